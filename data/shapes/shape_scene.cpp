#include "data/shapes/shape_scene.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/failure.h"

namespace sweep::data {
namespace {

// Where shapes may go in an image of a given size: slot centres at 1/6, 3/6 and 5/6 of the
// image, a jitter around them, and a radius range small enough that a shape stays inside the
// image and never touches its neighbour whatever the jitter.
struct Layout {
  int slot[3];
  int jitter;
  int min_radius, max_radius;
};

int scaled(double fraction, int size) { return static_cast<int>(std::lround(fraction * size)); }

Layout layout_for(int size) {
  Layout l;
  for (int i = 0; i < 3; ++i) l.slot[i] = scaled((2 * i + 1) / 6.0, size);
  l.jitter = scaled(0.03, size);
  const int inside = std::min(l.slot[0] - l.jitter, size - 1 - l.slot[2] - l.jitter);
  // Neighbours' boxes are disjoint when centre distance > r1 + r2.
  const int apart = (std::min(l.slot[1] - l.slot[0], l.slot[2] - l.slot[1]) - 2 * l.jitter - 1) / 2;
  l.max_radius = std::min({scaled(0.13, size), inside, apart});
  l.min_radius = std::min(scaled(0.10, size), l.max_radius);
  return l;
}

Place slot_place(bool row, int slot) {
  static const Place kRow[] = {Place::kLeft, Place::kCentre, Place::kRight};
  static const Place kColumn[] = {Place::kTop, Place::kCentre, Place::kBottom};
  return row ? kRow[slot] : kColumn[slot];
}

// k distinct values from [0, n), in a random order.
std::vector<int> pick_distinct(SeededRandom& rng, int n, int k) {
  std::vector<int> all(n);
  for (int i = 0; i < n; ++i) all[i] = i;
  rng.shuffle(all);
  all.resize(k);
  return all;
}

}  // namespace

Scene make_scene(SeededRandom& rng, int size) {
  if (size < 32)
    fail(ErrorKind::kUser, "shapes: image_size must be at least 32, got " + std::to_string(size));
  Scene s;
  s.size = size;
  const uint8_t grey = static_cast<uint8_t>(rng.between(215, 245));
  s.background = {grey, grey, grey};

  const int count = rng.between(1, kMaxShapes);
  const bool row = rng.chance(1, 2);
  std::vector<int> slots = pick_distinct(rng, 3, count);
  std::sort(slots.begin(), slots.end());  // reading order
  const std::vector<int> kinds = pick_distinct(rng, kShapeKindCount, count);
  const std::vector<int> colours = pick_distinct(rng, kColourCount, count);
  const Layout l = layout_for(size);
  for (int i = 0; i < count; ++i) {
    PlacedShape p;
    p.kind = static_cast<ShapeKind>(kinds[i]);
    p.colour = static_cast<Colour>(colours[i]);
    p.place = slot_place(row, slots[i]);
    p.radius = rng.between(l.min_radius, l.max_radius);
    const int along = l.slot[slots[i]] + rng.between(-l.jitter, l.jitter);
    const int across = l.slot[1] + rng.between(-l.jitter, l.jitter);
    p.cx = row ? along : across;
    p.cy = row ? across : along;
    s.shapes.push_back(p);
  }
  return s;
}

Place place_at(int x, int y, int size) {
  const int col = std::min(2, 3 * x / size);
  const int line = std::min(2, 3 * y / size);
  if (line == 1) return col == 0 ? Place::kLeft : col == 1 ? Place::kCentre : Place::kRight;
  if (col == 1) return line == 0 ? Place::kTop : Place::kBottom;
  fail(ErrorKind::kInternal, "shapes: position (" + std::to_string(x) + ", " + std::to_string(y) +
                                 ") is in a corner, which no place word names");
}

std::string kind_word(ShapeKind k) {
  static const char* kWords[] = {"circle", "square", "triangle"};
  return kWords[static_cast<int>(k)];
}

std::string colour_word(Colour c) {
  static const char* kWords[] = {"red", "green", "blue", "yellow", "purple", "orange"};
  return kWords[static_cast<int>(c)];
}

std::string place_word(Place p) {
  static const char* kWords[] = {"left", "centre", "right", "top", "bottom"};
  return kWords[static_cast<int>(p)];
}

std::string place_phrase(Place p) {
  switch (p) {
    case Place::kLeft:
    case Place::kRight:
      return "on the " + place_word(p);
    case Place::kCentre:
      return "in the centre";
    case Place::kTop:
    case Place::kBottom:
      return "at the " + place_word(p);
  }
  return "";
}

std::string count_word(int n) {
  static const char* kWords[] = {"zero", "one", "two", "three"};
  if (n < 0 || n > 3) fail(ErrorKind::kInternal, "shapes: no count word for " + std::to_string(n));
  return kWords[n];
}

// Saturated, far apart in hue, and all clearly darker or more coloured than the grey background.
std::array<uint8_t, 3> colour_rgb(Colour c) {
  static const std::array<uint8_t, 3> kRgb[] = {{220, 30, 30}, {30, 160, 50},  {40, 80, 220},
                                                {240, 200, 0}, {140, 50, 180}, {250, 130, 0}};
  return kRgb[static_cast<int>(c)];
}

std::string with_article(const std::string& word) {
  const bool vowel = !word.empty() && std::string("aeiou").find(word[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + word;
}

std::string caption(const Scene& s) {
  const size_t n = s.shapes.size();
  std::string out = count_word(static_cast<int>(n)) + (n == 1 ? " shape: " : " shapes: ");
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += (i + 1 == n) ? " and " : ", ";
    const PlacedShape& p = s.shapes[i];
    out +=
        with_article(colour_word(p.colour)) + " " + kind_word(p.kind) + " " + place_phrase(p.place);
  }
  return out + ".";
}

std::string scene_key(const Scene& s) {
  std::string key = std::to_string(s.size) + "/" + std::to_string(s.background[0]);
  for (const PlacedShape& p : s.shapes) {
    key += "/" + std::to_string(static_cast<int>(p.kind)) + "," +
           std::to_string(static_cast<int>(p.colour)) + "," + std::to_string(p.cx) + "," +
           std::to_string(p.cy) + "," + std::to_string(p.radius);
  }
  return key;
}

}  // namespace sweep::data
