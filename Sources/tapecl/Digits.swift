/// The UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin, C. Kaynak, 1998),
/// test part as distributed with scikit-learn (`load_digits`): 1,797 images of 8×8 pixels with
/// values 0–16, and their labels 0–9. Licence: CC BY 4.0, https://doi.org/10.24432/C50P49
///
/// `Data/digits.txt`, embedded in the binary at build time as a string literal (by
/// `EmbedKernelsPlugin`): one image per line, 64 letters (pixel value v written as the letter
/// 'a' + v), then the digit.
enum Digits {
    static let encoded: String = {
        guard let text = EmbeddedData.files["digits.txt"] else {
            fatalError("tapecl was built without Data/digits.txt")
        }
        return text
    }()
}

/// Text files of this target embedded at build time (`EmbeddedData.files[name]`).
enum EmbeddedData {}
