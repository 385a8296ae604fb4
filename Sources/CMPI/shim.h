// The few MPI calls TapeCLDistributed makes, behind functions of plain C types.
//
// Swift's importer cannot use MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE or
// MPI_STATUS_IGNORE: they are macros that cast the address of an extern struct in Open MPI and
// integers in MPICH, and MPI_Comm is a pointer in one and an int in the other. These static
// inline functions compile against either <mpi.h>; Swift sees only ints, sizes and pointers.
// Every function returns an MPI error code (MPI_SUCCESS is 0) unless it says otherwise.
#ifndef TAPECL_MPI_SHIM_H
#define TAPECL_MPI_SHIM_H

#include <mpi.h>
#include <stdint.h>

/// Element types, as TapeCLDistributed names them.
enum { TAPECL_MPI_FLOAT = 0, TAPECL_MPI_DOUBLE = 1, TAPECL_MPI_INT64 = 2, TAPECL_MPI_BYTE = 3, TAPECL_MPI_INT32 = 4 };
/// Reductions.
enum { TAPECL_MPI_SUM = 0, TAPECL_MPI_MAX = 1, TAPECL_MPI_MIN = 2 };

static inline MPI_Datatype tapecl_mpi_type(int type) {
    switch (type) {
    case TAPECL_MPI_FLOAT: return MPI_FLOAT;
    case TAPECL_MPI_DOUBLE: return MPI_DOUBLE;
    case TAPECL_MPI_INT64: return MPI_INT64_T;
    case TAPECL_MPI_INT32: return MPI_INT32_T;
    default: return MPI_BYTE;
    }
}

static inline MPI_Op tapecl_mpi_op(int op) {
    switch (op) {
    case TAPECL_MPI_MAX: return MPI_MAX;
    case TAPECL_MPI_MIN: return MPI_MIN;
    default: return MPI_SUM;
    }
}

/// MPI_Init_thread asking for MPI_THREAD_SERIALIZED (TapeCLDistributed holds a lock around every
/// call); errors on MPI_COMM_WORLD are returned, not fatal. Writes this process's rank, the
/// number of processes, the rank among the processes of this machine, and whether calls may come
/// from several threads (one at a time): 0 when the library gave less than MPI_THREAD_SERIALIZED.
static inline int tapecl_mpi_init(int *rank, int *size, int *local_rank, int *threads) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    *threads = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return rc;
    if ((rc = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS) return rc;
    MPI_Comm local;
    rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &local);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_Comm_rank(local, local_rank);
    MPI_Comm_free(&local);
    return rc;
}

static inline int tapecl_mpi_finalize(void) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    return finalized ? MPI_SUCCESS : MPI_Finalize();
}

/// Ends every process of the job with `code` (for a rank that cannot go on alone).
static inline void tapecl_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

/// The text of an MPI error code, into `text` (at least MPI_MAX_ERROR_STRING bytes).
static inline void tapecl_mpi_error_string(int code, char *text, int capacity) {
    char message[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, message, &length) != MPI_SUCCESS) length = 0;
    if (length >= capacity) length = capacity - 1;
    for (int i = 0; i < length; i++) text[i] = message[i];
    text[length > 0 ? length : 0] = 0;
}

/// The longest error text tapecl_mpi_error_string writes, with its terminating zero.
static inline int tapecl_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING + 1; }

/// In-place allreduce of `count` elements of `type` over MPI_COMM_WORLD (blocking).
static inline int tapecl_mpi_allreduce(void *buffer, int count, int type, int op) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, tapecl_mpi_type(type), tapecl_mpi_op(op), MPI_COMM_WORLD);
}

/// Broadcasts `count` elements of `type` from `root` (blocking).
static inline int tapecl_mpi_broadcast(void *buffer, int count, int type, int root) {
    return MPI_Bcast(buffer, count, tapecl_mpi_type(type), root, MPI_COMM_WORLD);
}

/// The bytes an MPI_Request takes (a pointer in Open MPI, an int in MPICH): Swift allocates them.
static inline int tapecl_mpi_request_size(void) { return (int)sizeof(MPI_Request); }

/// Starts an in-place allreduce; `request` (tapecl_mpi_request_size() bytes) completes in tapecl_mpi_test.
static inline int tapecl_mpi_iallreduce(void *buffer, int count, int type, int op, void *request) {
    return MPI_Iallreduce(MPI_IN_PLACE, buffer, count, tapecl_mpi_type(type), tapecl_mpi_op(op), MPI_COMM_WORLD,
                          (MPI_Request *)request);
}

/// Starts a broadcast of `count` elements of `type` from `root`.
static inline int tapecl_mpi_ibcast(void *buffer, int count, int type, int root, void *request) {
    return MPI_Ibcast(buffer, count, tapecl_mpi_type(type), root, MPI_COMM_WORLD, (MPI_Request *)request);
}

/// Starts sending `count` elements of `type` to rank `destination` with `tag`.
static inline int tapecl_mpi_isend(const void *buffer, int count, int type, int destination, int tag, void *request) {
    return MPI_Isend(buffer, count, tapecl_mpi_type(type), destination, tag, MPI_COMM_WORLD, (MPI_Request *)request);
}

/// Starts receiving `count` elements of `type` from rank `source` with `tag`.
static inline int tapecl_mpi_irecv(void *buffer, int count, int type, int source, int tag, void *request) {
    return MPI_Irecv(buffer, count, tapecl_mpi_type(type), source, tag, MPI_COMM_WORLD, (MPI_Request *)request);
}

/// Sets `*done` to 1 when the request has completed (and frees it), else to 0; never waits.
static inline int tapecl_mpi_test(void *request, int *done) {
    return MPI_Test((MPI_Request *)request, done, MPI_STATUS_IGNORE);
}

/// Whether MPI_Init has been called in this process (1) or not (0).
static inline int tapecl_mpi_initialized(void) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    return initialized;
}

#endif
