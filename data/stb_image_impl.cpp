// stb_image's implementation (Debian's libstb ships the header only), in a file of its own so
// that the sanitizer builds can leave one check out here and nowhere else: stb_image 2.27
// shifts a 32-bit value by 32 when a corrupt JPEG's entropy-coded data runs its bit count
// below zero (stbi__grow_buffer_unsafe; found by fuzz/fuzz_image, reproducer in
// fuzz/corpus/image/jpeg-shift-32.jpg). On x86 that shift yields garbage bits, which stb then
// decodes into a garbage image or an error; it reads and writes nothing out of bounds, which
// ASan and UBSan's other checks still verify in this file (data/CMakeLists.txt).
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
