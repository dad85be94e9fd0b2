#include "data/shapes/scene_questions.h"

#include <algorithm>

namespace sweep::data {
namespace {

// Kinds and colours are distinct within a scene, so naming either one picks out a single shape.
void about_each_shape(const Scene& s, std::vector<QuestionAnswer>& out) {
  for (const PlacedShape& p : s.shapes) {
    const std::string kind = kind_word(p.kind), colour = colour_word(p.colour);
    out.push_back({QuestionType::kColour, "What colour is the " + kind + "?", colour});
    out.push_back(
        {QuestionType::kColour, "What colour is the shape " + place_phrase(p.place) + "?", colour});
    out.push_back({QuestionType::kShape, "What shape is the " + colour + " object?", kind});
    out.push_back({QuestionType::kShape, "What shape is " + place_phrase(p.place) + "?", kind});
    out.push_back({QuestionType::kPosition, "Where is the " + colour + " " + kind + "?",
                   place_word(p.place)});
    out.push_back({QuestionType::kPosition, "Where is the " + kind + "?", place_word(p.place)});
  }
}

template <typename T>
const T& pick_one(const std::vector<T>& v, SeededRandom& rng) {
  return v[rng.below(v.size())];
}

// Distinct values in first-seen order (a fixed order keeps the picks deterministic).
std::vector<std::string> distinct_answers(const std::vector<QuestionAnswer>& qs) {
  std::vector<std::string> out;
  for (const QuestionAnswer& q : qs) {
    if (std::find(out.begin(), out.end(), q.answer) == out.end()) out.push_back(q.answer);
  }
  return out;
}

std::vector<QuestionAnswer> of_type(const std::vector<QuestionAnswer>& all, QuestionType t) {
  std::vector<QuestionAnswer> out;
  for (const QuestionAnswer& q : all) {
    if (q.type == t) out.push_back(q);
  }
  return out;
}

}  // namespace

std::vector<QuestionAnswer> scene_questions(const Scene& s) {
  std::vector<QuestionAnswer> out;
  about_each_shape(s, out);
  out.push_back({QuestionType::kCount, "How many shapes are there?",
                 count_word(static_cast<int>(s.shapes.size()))});
  return out;
}

std::vector<QuestionAnswer> pick_questions(const Scene& s, int n, SeededRandom& rng) {
  const std::vector<QuestionAnswer> all = scene_questions(s);
  std::vector<int> types(kQuestionTypeCount);
  for (int i = 0; i < kQuestionTypeCount; ++i) types[i] = i;
  rng.shuffle(types);
  std::vector<QuestionAnswer> out;
  for (int i = 0; i < n && i < kQuestionTypeCount; ++i) {
    const std::vector<QuestionAnswer> same_type = of_type(all, static_cast<QuestionType>(types[i]));
    const std::string answer = pick_one(distinct_answers(same_type), rng);
    std::vector<QuestionAnswer> same_answer;
    for (const QuestionAnswer& q : same_type) {
      if (q.answer == answer) same_answer.push_back(q);
    }
    out.push_back(pick_one(same_answer, rng));
  }
  return out;
}

}  // namespace sweep::data
