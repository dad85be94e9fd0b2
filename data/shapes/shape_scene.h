// One picture of builtin:shapes as data: one to three shapes, each a distinct kind and a distinct
// colour, at distinct places along one row (left, centre, right) or one column (top, centre,
// bottom). Questions, captions and pixels are all derived from this struct, so every answer is
// decidable from the image.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/shapes/seeded_random.h"

namespace sweep::data {

enum class ShapeKind { kCircle, kSquare, kTriangle };
enum class Colour { kRed, kGreen, kBlue, kYellow, kPurple, kOrange };
enum class Place { kLeft, kCentre, kRight, kTop, kBottom };

constexpr int kShapeKindCount = 3;
constexpr int kColourCount = 6;
constexpr int kMaxShapes = 3;

struct PlacedShape {
  ShapeKind kind;
  Colour colour;
  Place place;
  int cx, cy;  // centre, pixels
  int radius;  // half the side of the shape's bounding box, pixels
};

struct Scene {
  int size = 0;                       // image width = height, pixels
  std::array<uint8_t, 3> background;  // plain grey
  std::vector<PlacedShape> shapes;    // in reading order: left to right, top to bottom
};

// Draws a scene. Shapes never overlap and stay inside the image; size >= 32.
Scene make_scene(SeededRandom& rng, int size);

// The place a pixel position reads as: the image is cut into thirds along each axis; the middle
// third of both is the centre. Used to check that placement matches the words.
Place place_at(int x, int y, int size);

std::string kind_word(ShapeKind k);  // "circle"
std::string colour_word(Colour c);   // "red"
std::string place_word(Place p);     // "left", "centre", "top"
std::string place_phrase(Place p);   // "on the left", "in the centre", "at the top"
std::string count_word(int n);       // "one", "two", "three"
std::array<uint8_t, 3> colour_rgb(Colour c);

// "a red", "an orange".
std::string with_article(const std::string& word);

// "two shapes: a red circle on the left and a blue square on the right." The count comes first,
// so the count words are words the base model learns as well.
std::string caption(const Scene& s);

// A string equal for two scenes exactly when they render to the same pixels.
std::string scene_key(const Scene& s);

}  // namespace sweep::data
