// A LLaMA-style SentencePiece tokenizer (tokenizer.model), encoding text as the Hugging Face
// slow LlamaTokenizer does in its default legacy mode: the text is first split on the special
// tokens "<s>", "</s>", "<unk>" (which become their ids), and every other piece is encoded by
// SentencePiece on its own (so each gets SentencePiece's dummy "▁" prefix).
// Ids: unk 0, bos 1, eos 2; padding uses unk (0), as LLaVA does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace sweep::data {

class Tokenizer {
 public:
  // `path_or_model_dir`: a tokenizer.model file, or a directory holding one. Throws
  // std::runtime_error naming the path when it is missing or not a SentencePiece model.
  static Tokenizer load(const std::string& path_or_model_dir);

  // Thread-safe (const); a copy shares the loaded model.
  std::vector<int64_t> encode(const std::string& text, bool add_bos) const;
  // Text of the ids, skipping bos/eos/pad and negative ids (the -200 image placeholder).
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return unk_id_; }  // = unk (0)
  int64_t unk_id() const { return unk_id_; }
  int64_t vocab_size() const { return vocab_size_; }
  const std::string& path() const { return path_; }

 private:
  void encode_piece(const std::string& text, std::vector<int64_t>* out) const;

  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
  int64_t bos_id_ = 1, eos_id_ = 2, unk_id_ = 0, vocab_size_ = 0;
};

// Trains a SentencePiece model on `corpus_lines` and writes it to `out_model_path` (the
// directory must exist). Settings follow LLaMA's tokenizer where the label mask depends on them:
// BPE, no extra-whitespace removal, identity normalisation, byte fallback, digits split,
// unk 0 / bos 1 / eos 2, no pad piece, character coverage 1.0. `vocab_size` is a soft limit
// (a small corpus may yield fewer pieces). Deterministic for a given corpus. Throws on failure.
void train_tokenizer(const std::vector<std::string>& corpus_lines,
                     const std::string& out_model_path, int vocab_size);

}  // namespace sweep::data
