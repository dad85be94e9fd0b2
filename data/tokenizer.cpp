#include "data/tokenizer.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <unordered_map>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "common/failure.h"

namespace sweep::data {
namespace {

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The special tokens the Hugging Face slow tokenizer splits out before SentencePiece sees the
// text. Checked longest first, though none is a prefix of another.
struct Special {
  const char* text;
  size_t size;
};
constexpr Special kSpecials[] = {{"<unk>", 5}, {"</s>", 4}, {"<s>", 3}};

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& lines) : lines_(lines) {}
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& lines_;
  size_t i_ = 0;
};

}  // namespace

Tokenizer Tokenizer::load(const std::string& path_or_model_dir) {
  std::string path = path_or_model_dir;
  if (is_directory(path)) {
    const std::string dir = path;
    path += "/tokenizer.model";
    // Hugging Face fast-tokenizer-only checkpoints carry tokenizer.json alone: its BPE/Unigram
    // form is not read here, and guessing would tokenize differently from training elsewhere.
    if (!exists(path) && exists(dir + "/tokenizer.json")) {
      fail(ErrorKind::kUser,
           dir +
               " has tokenizer.json but no tokenizer.model: the worker reads LLaMA's "
               "SentencePiece tokenizer.model only (hint: copy tokenizer.model from the original "
               "checkpoint, e.g. llava-hf/llava-1.5-7b-hf ships both)");
    }
  }
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->Load(path);
  if (!status.ok()) {
    fail(ErrorKind::kUser, path +
                               ": cannot load the SentencePiece tokenizer: " + status.ToString() +
                               " (hint: a LLaMA model directory holds tokenizer.model)");
  }
  Tokenizer tok;
  tok.path_ = path;
  tok.unk_id_ = sp->unk_id();
  tok.bos_id_ = sp->bos_id();
  tok.eos_id_ = sp->eos_id();
  tok.vocab_size_ = sp->GetPieceSize();
  if (tok.bos_id_ < 0 || tok.eos_id_ < 0) {
    fail(ErrorKind::kUser, path + ": the tokenizer has no <s> or </s> piece (bos " +
                               std::to_string(tok.bos_id_) + ", eos " +
                               std::to_string(tok.eos_id_) + ")");
  }
  tok.sp_ = std::move(sp);
  return tok;
}

void Tokenizer::encode_piece(const std::string& text, std::vector<int64_t>* out) const {
  if (text.empty()) return;
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) fail(ErrorKind::kInternal, path_ + ": encode failed: " + status.ToString());
  out->insert(out->end(), ids.begin(), ids.end());
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int64_t> out;
  if (add_bos) out.push_back(bos_id_);
  const int64_t special_ids[] = {unk_id_, eos_id_, bos_id_};
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    int found = -1;
    if (text[i] == '<') {
      for (int k = 0; k < 3; ++k) {
        if (text.compare(i, kSpecials[k].size, kSpecials[k].text) == 0) {
          found = k;
          break;
        }
      }
    }
    if (found < 0) {
      ++i;
      continue;
    }
    encode_piece(text.substr(start, i - start), &out);
    out.push_back(special_ids[found]);
    i += kSpecials[found].size;
    start = i;
  }
  encode_piece(text.substr(start), &out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size_ || id == bos_id_ || id == eos_id_ || id == unk_id_) continue;
    kept.push_back(static_cast<int>(id));
  }
  return sp_->DecodeIds(kept);
}

void train_tokenizer(const std::vector<std::string>& corpus_lines,
                     const std::string& out_model_path, int vocab_size) {
  if (corpus_lines.empty()) {
    fail(ErrorKind::kUser, out_model_path + ": cannot train a tokenizer on an empty corpus");
  }
  // remove_extra_whitespaces=false keeps the lone "▁" of a trailing space, which LLaVA's
  // "instruction_len - 2" relies on (reference §3); byte_fallback leaves no character unknown.
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"hard_vocab_limit", "false"},
      {"character_coverage", "1.0"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"num_threads", "1"},
      {"max_sentence_length", "65536"},
      {"minloglevel", "2"},
  };
  VectorIterator it(corpus_lines);
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
  if (!status.ok()) {
    fail(ErrorKind::kInternal,
         out_model_path + ": tokenizer training failed: " + status.ToString() +
             " (hint: a vocab_size above 259 + the number of distinct characters)");
  }
  const std::string tmp = out_model_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(proto.data(), static_cast<std::streamsize>(proto.size()));
    if (!out) fail(ErrorKind::kIo, tmp + ": cannot write the tokenizer");
  }
  if (std::rename(tmp.c_str(), out_model_path.c_str()) != 0) {
    fail(ErrorKind::kIo, out_model_path + ": cannot rename " + tmp + " into place");
  }
}

}  // namespace sweep::data
