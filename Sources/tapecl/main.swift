import TapeCL
print(Device.all)
