# aarch64-linux-gnu.cmake: cross-compiles for 64-bit Arm with Debian's gcc-aarch64-linux-gnu; ctest runs the
# programs under qemu-user (multiarch arm64 libraries, e.g. libcmocka-dev:arm64, live in /usr/lib/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
# The multiarch loader and libc (libc6:arm64, pulled in by libcmocka-dev:arm64) serve the programs; qemu -L with
# the cross sysroot instead hangs in pthread_create under qemu 7.2.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
