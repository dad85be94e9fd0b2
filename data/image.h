// Image decoding and CLIP preprocessing (reference §4), matching CLIPImageProcessor with
// LLaVA's expand2square: pad to a square with the mean colour, resize the shortest edge
// (bicubic, computed as Pillow does), centre crop, scale 1/255, normalise with CLIP mean/std.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sweep::data {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes per pixel
};

constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};
// LLaVA's pad colour: int(255 * mean) per channel.
constexpr std::array<uint8_t, 3> kClipMeanColor = {122, 116, 104};

// The default pixel limit of `sweep check-data` (--max-pixels) and of `sweep run`'s data check
// (data.max_image_pixels): Pillow's decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS), past
// which LLaVA's own loader warns. An image above it is refused from its header, before any pixel
// is allocated.
constexpr int64_t kDefaultMaxImagePixels = 89'478'485;

// Where a sample's "image" lies: an absolute path as given (LLaVA's loader accepts them), a
// relative one under `folder` (as is when `folder` is empty). The training loader and
// `sweep check-data` both resolve through here.
std::string resolve_image_path(const std::string& folder, const std::string& image);

// True when a relative image path leaves its folder lexically ("../x", "a/../../x"). Symlinks
// are not followed: a link inside the folder is the user's choice.
bool image_path_escapes_folder(const std::string& image);

// PNG / JPEG (any format stb_image reads), converted to RGB. Throws Failure (common/failure.h)
// naming the file and the reason: kNotFound when it cannot be opened, kUser when it does not
// decode (a truncated file, not an image) or, with max_pixels > 0, when its header claims more
// than max_pixels pixels ("too large (W x H pixels, limit N)", checked before decoding) or its
// header cannot be read (as read_image_header, which check-data uses).
Image decode_image(const std::string& path, int64_t max_pixels = 0);

// Reads only the header. False with `error` set when the file cannot be opened ("cannot open
// ..."), is not a decodable image ("not a decodable image: ..."), or, with max_pixels > 0,
// claims more pixels than that ("too large (W x H pixels, limit N)"; w and h are set). PNG and
// JPEG sizes are read from the header itself, so a size stb_image refuses is still reported as
// the size it is. Fast enough to check 100k files.
bool read_image_header(const std::string& path, int* w, int* h, std::string* error,
                       int64_t max_pixels = 0);

// LLaVA's expand2square: a max(w,h) square filled with `fill`, the image pasted centred on the
// short axis at offset (long - short) / 2 (integer division). A square image is returned as is.
Image expand_to_square(const Image& img, std::array<uint8_t, 3> fill);

// Pillow's bicubic resize (a = -0.5, antialiased when shrinking, 8-bit fixed point).
Image resize_bicubic(const Image& img, int width, int height);

// Centre crop as Hugging Face does: top = (h - size) / 2, left = (w - size) / 2.
Image center_crop(const Image& img, int size);

// The full CLIP pipeline: optional expand_to_square(kClipMeanColor), shortest edge to `size`
// (long edge int(size * long / short)), centre crop size x size, then (x/255 - mean) / std.
// Returns [3 * size * size] floats, channel-major (CHW).
std::vector<float> clip_preprocess(const Image& img, int size, bool pad_to_square);

}  // namespace sweep::data
