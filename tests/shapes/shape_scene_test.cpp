#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "data/shapes/scene_image.h"
#include "data/shapes/scene_questions.h"
#include "data/shapes/seeded_random.h"
#include "data/shapes/shape_scene.h"

namespace sweep::data {
namespace {

const PlacedShape* find_shape(const Scene& s, const std::function<bool(const PlacedShape&)>& f) {
  const PlacedShape* found = nullptr;
  for (const PlacedShape& p : s.shapes) {
    if (!f(p)) continue;
    if (found) return nullptr;  // ambiguous: the question would have no single answer
    found = &p;
  }
  return found;
}

// Compiled once: building a std::regex per question would dominate the test's time.
const std::regex& re(const std::string& pattern) {
  static std::map<std::string, std::regex> cache;
  auto it = cache.find(pattern);
  if (it == cache.end()) it = cache.emplace(pattern, std::regex(pattern)).first;
  return it->second;
}

// Answers a question from the scene struct alone, parsing the English; "" when it cannot.
std::string oracle(const Scene& s, const std::string& q) {
  std::smatch m;
  const PlacedShape* p = nullptr;
  auto by_kind = [&](const std::string& w) {
    return find_shape(s, [&](const PlacedShape& x) { return kind_word(x.kind) == w; });
  };
  auto by_colour = [&](const std::string& w) {
    return find_shape(s, [&](const PlacedShape& x) { return colour_word(x.colour) == w; });
  };
  auto by_place = [&](const std::string& w) {
    return find_shape(s, [&](const PlacedShape& x) { return place_word(x.place) == w; });
  };
  if (std::regex_match(q, m, re("What colour is the (circle|square|triangle)\\?"))) {
    p = by_kind(m[1]);
    return p ? colour_word(p->colour) : "";
  }
  if (std::regex_match(q, m, re("What colour is the shape (on|in|at) the (\\w+)\\?"))) {
    p = by_place(m[2]);
    return p ? colour_word(p->colour) : "";
  }
  if (std::regex_match(q, m, re("What shape is the (\\w+) object\\?"))) {
    p = by_colour(m[1]);
    return p ? kind_word(p->kind) : "";
  }
  if (std::regex_match(q, m, re("What shape is (on|in|at) the (\\w+)\\?"))) {
    p = by_place(m[2]);
    return p ? kind_word(p->kind) : "";
  }
  if (std::regex_match(q, m, re("Where is the (\\w+) (\\w+)\\?"))) {
    p = find_shape(s, [&](const PlacedShape& x) {
      return colour_word(x.colour) == m[1].str() && kind_word(x.kind) == m[2].str();
    });
    return p ? place_word(p->place) : "";
  }
  if (std::regex_match(q, m, re("Where is the (\\w+)\\?"))) {
    p = by_kind(m[1]);
    return p ? place_word(p->place) : "";
  }
  if (q == "How many shapes are there?") {
    static const char* kWords[] = {"zero", "one", "two", "three"};
    return kWords[s.shapes.size()];
  }
  return "";
}

TEST(SeededRandom, SameSeedGivesSameDrawsAndEveryValueInRange) {
  SeededRandom a(7), b(7), c(8);
  std::vector<int> counts(6);
  bool differs = false;
  for (int i = 0; i < 6000; ++i) {
    const uint64_t x = a.below(6);
    ASSERT_EQ(x, b.below(6));
    differs |= x != c.below(6);
    ASSERT_LT(x, 6u);
    ++counts[x];
  }
  EXPECT_TRUE(differs);
  for (int n : counts) EXPECT_NEAR(n, 1000, 150);
}

TEST(SeededRandom, MapsTheStandardEngineOutputItself) {
  // mt19937_64 with seed 5489 is fixed by the standard: first output 14514284786278117030.
  SeededRandom r(5489);
  EXPECT_EQ(r.below(UINT64_MAX), 14514284786278117030ull % UINT64_MAX);
  EXPECT_EQ(r.between(3, 3), 3);
}

TEST(ShapeScene, ShapesAreDistinctInsideTheImageApartAndWhereTheirPlaceSays) {
  for (int size : {32, 33, 45, 64, 100, 224}) {
    SeededRandom rng(size);
    for (int i = 0; i < 500; ++i) {
      const Scene s = make_scene(rng, size);
      ASSERT_GE(s.shapes.size(), 1u);
      ASSERT_LE(s.shapes.size(), 3u);
      std::set<ShapeKind> kinds;
      std::set<Colour> colours;
      for (size_t j = 0; j < s.shapes.size(); ++j) {
        const PlacedShape& p = s.shapes[j];
        kinds.insert(p.kind);
        colours.insert(p.colour);
        EXPECT_GE(p.cx - p.radius, 0) << "size " << size;
        EXPECT_LT(p.cx + p.radius, size) << "size " << size;
        EXPECT_GE(p.cy - p.radius, 0) << "size " << size;
        EXPECT_LT(p.cy + p.radius, size) << "size " << size;
        // The whole bounding box reads as the shape's place, so no pixel of it is ambiguous.
        EXPECT_EQ(place_at(p.cx, p.cy, size), p.place) << scene_key(s);
        for (size_t k = 0; k < j; ++k) {
          const PlacedShape& o = s.shapes[k];
          const bool apart = std::abs(p.cx - o.cx) > p.radius + o.radius ||
                             std::abs(p.cy - o.cy) > p.radius + o.radius;
          EXPECT_TRUE(apart) << "overlap in " << scene_key(s);
        }
      }
      EXPECT_EQ(kinds.size(), s.shapes.size());
      EXPECT_EQ(colours.size(), s.shapes.size());
    }
  }
}

TEST(ShapeScene, CaptionDescribesEveryShapeInReadingOrder) {
  Scene s;
  s.size = 64;
  s.background = {230, 230, 230};
  s.shapes = {{ShapeKind::kCircle, Colour::kRed, Place::kLeft, 10, 32, 7},
              {ShapeKind::kSquare, Colour::kBlue, Place::kRight, 53, 32, 7}};
  EXPECT_EQ(caption(s), "two shapes: a red circle on the left and a blue square on the right.");
  s.shapes.insert(s.shapes.begin() + 1,
                  {ShapeKind::kTriangle, Colour::kOrange, Place::kCentre, 32, 32, 7});
  EXPECT_EQ(caption(s),
            "three shapes: a red circle on the left, an orange triangle in the centre and a blue "
            "square on the right.");
  s.shapes = {{ShapeKind::kTriangle, Colour::kYellow, Place::kTop, 32, 10, 7}};
  EXPECT_EQ(caption(s), "one shape: a yellow triangle at the top.");
}

TEST(ShapeScene, PixelsShowEachShapeInItsColourOnThePlainBackground) {
  SeededRandom rng(3);
  for (int i = 0; i < 200; ++i) {
    const Scene s = make_scene(rng, 64);
    const std::vector<uint8_t> rgb = render_scene(s);
    ASSERT_EQ(rgb.size(), 64u * 64u * 3u);
    auto at = [&](int x, int y) {
      const uint8_t* p = &rgb[(y * 64 + x) * 3];
      return std::array<uint8_t, 3>{p[0], p[1], p[2]};
    };
    for (const PlacedShape& p : s.shapes) {
      EXPECT_EQ(at(p.cx, p.cy), colour_rgb(p.colour)) << scene_key(s);
    }
    EXPECT_EQ(at(0, 0), s.background);
    EXPECT_EQ(at(63, 63), s.background);
    // Every non-background pixel lies in some shape's box.
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) {
        if (at(x, y) == s.background) continue;
        bool in_box = false;
        for (const PlacedShape& p : s.shapes) {
          in_box |= std::abs(x - p.cx) <= p.radius && std::abs(y - p.cy) <= p.radius;
        }
        ASSERT_TRUE(in_box) << "stray pixel (" << x << ", " << y << ") in " << scene_key(s);
      }
    }
  }
}

TEST(SceneQuestions, EveryAnswerIsTheOneTheSceneDecides) {
  SeededRandom rng(11);
  std::map<QuestionType, int> seen;
  for (int i = 0; i < 2000; ++i) {
    const Scene s = make_scene(rng, 64);
    for (const QuestionAnswer& qa : scene_questions(s)) {
      ASSERT_EQ(oracle(s, qa.question), qa.answer) << qa.question << " in " << scene_key(s);
      ++seen[qa.type];
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kQuestionTypeCount));
}

TEST(SceneQuestions, PicksAreDistinctTypesWithBalancedAnswers) {
  SeededRandom rng(5);
  std::map<std::string, int> count_answers;
  std::map<QuestionType, int> types;
  for (int i = 0; i < 3000; ++i) {
    const Scene s = make_scene(rng, 64);
    const std::vector<QuestionAnswer> picks = pick_questions(s, 2, rng);
    ASSERT_EQ(picks.size(), 2u);
    EXPECT_NE(picks[0].type, picks[1].type);
    for (const QuestionAnswer& qa : picks) {
      ASSERT_EQ(oracle(s, qa.question), qa.answer) << qa.question << " in " << scene_key(s);
      ++types[qa.type];
      if (qa.type == QuestionType::kCount) ++count_answers[qa.answer];
    }
  }
  for (const auto& [type, n] : types) EXPECT_NEAR(n, 6000 / kQuestionTypeCount, 150);
  EXPECT_EQ(count_answers.size(), 3u);
  for (const auto& [word, n] : count_answers) EXPECT_NEAR(n, 6000 / kQuestionTypeCount / 3, 100);
}

}  // namespace
}  // namespace sweep::data
