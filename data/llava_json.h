// LLaVA's training data format (docs/data.md): a JSON array of samples, each
//   {"id": "000001", "image": "coco/000001.jpg",
//    "conversations": [{"from": "human", "value": "<image>\nWhat is on the table?"},
//                      {"from": "gpt", "value": "A red cup."}]}
// `image` is relative to an image folder and optional (text-only sample).
#pragma once

#include <string>
#include <vector>

namespace sweep::data {

struct Turn {
  std::string from;   // "human" or "gpt"
  std::string value;  // as written in the file; the template moves <image> to the front
};

struct Sample {
  std::string id;     // the sample's "id" (a number is kept as its decimal text); may be empty
  std::string image;  // relative to the image folder; empty = text-only
  std::vector<Turn> conversations;
};

// Reads and validates a whole file. Strict: the first error (see check_data.h for the kinds)
// throws Failure (common/failure.h) "FILE: sample 12 (id 000012): <message> (hint: ...)"; warnings
// are ignored. Image files are not opened here. The file is parsed one sample at a time, so only
// the resulting samples are held in memory, never the text or a JSON tree of the whole file.
std::vector<Sample> load_llava_json(const std::string& path);

}  // namespace sweep::data
