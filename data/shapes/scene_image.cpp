#include "data/shapes/scene_image.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>

// Static: the writer stays private to this file, whatever else links stb.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>

#include "common/failure.h"
#pragma GCC diagnostic pop

namespace sweep::data {
namespace {

constexpr int kSamples = 4;  // per axis, per pixel

// Shape-local coordinates: (u, v) relative to the centre, in units of the radius.
bool inside(ShapeKind kind, double u, double v) {
  switch (kind) {
    case ShapeKind::kCircle:
      return u * u + v * v <= 1.0;
    case ShapeKind::kSquare:
      return std::fabs(u) <= 0.85 && std::fabs(v) <= 0.85;  // about the circle's area
    case ShapeKind::kTriangle:
      // Apex at (0, -1), base from (-1, 0.8) to (1, 0.8): |u| <= (v + 1) / 1.8.
      return v <= 0.8 && std::fabs(u) <= (v + 1.0) / 1.8;
  }
  return false;
}

double coverage(const PlacedShape& p, int x, int y) {
  int hits = 0;
  for (int sy = 0; sy < kSamples; ++sy) {
    for (int sx = 0; sx < kSamples; ++sx) {
      // The shape's centre is the centre of pixel (cx, cy).
      const double u = (x + (sx + 0.5) / kSamples - (p.cx + 0.5)) / p.radius;
      const double v = (y + (sy + 0.5) / kSamples - (p.cy + 0.5)) / p.radius;
      hits += inside(p.kind, u, v);
    }
  }
  return static_cast<double>(hits) / (kSamples * kSamples);
}

// Shapes never overlap, so each pixel blends one shape over the background.
void draw(const PlacedShape& p, int size, std::vector<uint8_t>& rgb) {
  const std::array<uint8_t, 3> colour = colour_rgb(p.colour);
  for (int y = std::max(0, p.cy - p.radius); y <= std::min(size - 1, p.cy + p.radius); ++y) {
    for (int x = std::max(0, p.cx - p.radius); x <= std::min(size - 1, p.cx + p.radius); ++x) {
      const double a = coverage(p, x, y);
      if (a == 0.0) continue;
      uint8_t* px = &rgb[(static_cast<size_t>(y) * size + x) * 3];
      for (int c = 0; c < 3; ++c) {
        px[c] = static_cast<uint8_t>(std::lround(a * colour[c] + (1.0 - a) * px[c]));
      }
    }
  }
}

}  // namespace

std::vector<uint8_t> render_scene(const Scene& s) {
  std::vector<uint8_t> rgb(static_cast<size_t>(s.size) * s.size * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    for (int c = 0; c < 3; ++c) rgb[i + c] = s.background[c];
  }
  for (const PlacedShape& p : s.shapes) draw(p, s.size, rgb);
  return rgb;
}

void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int size) {
  if (rgb.size() != static_cast<size_t>(size) * size * 3) {
    fail(ErrorKind::kInternal,
         "shapes: " + path + ": pixel buffer does not match size " + std::to_string(size));
  }
  // Always the "sub" row filter: stb's per-row filter search costs more than the rest of the
  // dataset together, and on flat shapes "sub" compresses about as well.
  static const bool kFilterChosen = (stbi_write_force_png_filter = 1, true);
  (void)kFilterChosen;
  if (!stbi_write_png(path.c_str(), size, size, 3, rgb.data(), size * 3)) {
    fail(ErrorKind::kIo, "shapes: cannot write " + path +
                             " (check that the directory exists and is writable, and disk space)");
  }
}

}  // namespace sweep::data
