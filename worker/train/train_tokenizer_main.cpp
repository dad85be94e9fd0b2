// sweep-train-tokenizer CORPUS.txt OUT.model VOCAB: trains a SentencePiece tokenizer
// (data::train_tokenizer) in a process without LibTorch. libsentencepiece_train calls protobuf
// through the global symbol scope, where LibTorch's libprotobuf 3.21 sits, and sentencepiece's
// bundled 3.14 objects break on it; so sweep-worker runs this helper (it sits beside sweep-worker).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "data/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: sweep-train-tokenizer CORPUS.txt OUT.model VOCAB\n";
    return 1;
  }
  std::ifstream in(argv[1]);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  try {
    sweep::data::train_tokenizer(lines, argv[2], std::atoi(argv[3]));
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  return 0;
}
