// The questions builtin:shapes asks about a scene, each with the one-word answer the scene decides.
#pragma once

#include <string>
#include <vector>

#include "data/shapes/seeded_random.h"
#include "data/shapes/shape_scene.h"

namespace sweep::data {

// Every answer is a word the captions use too, so the base model knows it (see caption()).
enum class QuestionType { kColour, kShape, kCount, kPosition };
constexpr int kQuestionTypeCount = 4;

struct QuestionAnswer {
  QuestionType type;
  std::string question;  // "What colour is the circle?"
  std::string answer;    // "red" (lower case, one word)
};

// Every question that has exactly one right answer for `s`, in a fixed order.
std::vector<QuestionAnswer> scene_questions(const Scene& s);

// Picks `n` questions of distinct types (n <= kQuestionTypeCount): a type uniformly, then an
// answer uniformly among that type's answers, then one question with that answer, so answers are
// balanced (each colour alike, each count alike).
std::vector<QuestionAnswer> pick_questions(const Scene& s, int n, SeededRandom& rng);

}  // namespace sweep::data
