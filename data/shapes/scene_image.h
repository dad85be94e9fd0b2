// Pixels of a builtin:shapes scene, and writing them as PNG.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/shapes/shape_scene.h"

namespace sweep::data {

// RGB, row-major, size*size*3 bytes. Shape edges are anti-aliased (4x4 samples per pixel).
std::vector<uint8_t> render_scene(const Scene& s);

// Writes an RGB image as PNG (deterministic bytes). Throws std::runtime_error naming the path.
void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int size);

}  // namespace sweep::data
