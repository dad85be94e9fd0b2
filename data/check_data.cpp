#include "data/check_data.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "common/failure.h"
#include "data/image.h"
#include "data/max_length.h"
#include "data/parallel.h"
#include "data/preprocess.h"
#include "data/sample_checks.h"
#include "data/tokenizer.h"

namespace sweep::data {
namespace {

using nlohmann::json;

struct Indexed {
  int64_t index;
  Sample sample;  // as far as it could be read
  bool valid;     // no structural error: tokenised when a model is given
};

DataProblem problem(const Indexed& s, std::string kind, std::string message, bool error,
                    std::string hint = {}) {
  return DataProblem{std::move(kind),    s.index, s.sample.id,
                     std::move(message), error,   std::move(hint)};
}

void check_duplicate_ids(const std::vector<Indexed>& samples, std::vector<DataProblem>* out) {
  std::unordered_map<std::string, int64_t> first;
  for (const Indexed& s : samples) {
    if (s.sample.id.empty()) continue;  // also skips samples whose id could not be read
    auto [it, inserted] = first.emplace(s.sample.id, s.index);
    if (!inserted) {
      out->push_back(problem(
          s, "duplicate_id",
          "id " + s.sample.id + " is also the id of sample " + std::to_string(it->second), false));
    }
  }
}

// The sample's image: inside the folder, existing, readable, within the pixel limit (read from
// the header, before any pixel is allocated) and, with opt.decode_images, decodable to the last
// byte. A relative path that leaves the folder is not read at all.
void check_image(const Indexed& s, const CheckOptions& opt, std::vector<DataProblem>* out) {
  const std::string& image = s.sample.image;
  if (image_path_escapes_folder(image)) {
    out->push_back(problem(
        s, "image_outside_folder",
        "image " + image + " leaves the image folder " + opt.image_folder + "; it was not read",
        true,
        "give a path inside --image-folder, or an absolute path for an image "
        "kept elsewhere"));
    return;
  }
  const std::string path = resolve_image_path(opt.image_folder, image);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    out->push_back(problem(s, "image_missing", "image " + path + " does not exist", true,
                           "image paths are relative to --image-folder"));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    out->push_back(
        problem(s, "image_unreadable", "image " + path + " is not a regular file", true));
    return;
  }
  int w = 0, h = 0;
  std::string error;
  if (!read_image_header(path, &w, &h, &error, opt.max_pixels)) {
    if (error.rfind("too large", 0) == 0) {
      out->push_back(problem(s, "image_too_large", "image " + path + ": " + error, true,
                             "shrink the image, or raise the limit with --max-pixels "
                             "(data.max_image_pixels in a sweep file)"));
      return;
    }
    const bool unreadable = error.rfind("not a decodable image", 0) != 0;
    out->push_back(problem(
        s, unreadable ? "image_unreadable" : "image_not_decodable", "image " + path + ": " + error,
        true, unreadable ? "check the file's permissions" : "PNG and JPEG files are supported"));
    return;
  }
  if (!opt.decode_images) return;
  Result<Image> decoded = capture([&] { return decode_image(path, opt.max_pixels); });
  if (!decoded.ok()) {
    out->push_back(problem(s, "image_not_decodable", "image " + decoded.error().message, true,
                           "the file is truncated or corrupt: replace it (PNG and JPEG files "
                           "are supported)"));
  }
}

// A named image folder that does not exist: one problem for the file instead of one
// image_missing per sample. True when it is missing.
bool check_image_folder(const std::vector<Indexed>& samples, const std::string& folder,
                        std::vector<DataProblem>* out) {
  if (folder.empty()) return false;
  struct stat st {};
  if (::stat(folder.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return false;
  int64_t relative = 0;
  for (const Indexed& s : samples) {
    if (!s.sample.image.empty() && s.sample.image[0] != '/') ++relative;
  }
  if (relative == 0) return false;
  out->push_back(DataProblem{
      "image_folder_missing", -1, "",
      "image folder " + folder +
          (::stat(folder.c_str(), &st) == 0 ? " is not a directory" : " does not exist") + " (" +
          std::to_string(relative) + " samples name an image under it)",
      true, "check --image-folder (data.image_folder in a sweep file)"});
  return true;
}

struct ModelLimits {
  int64_t max_length = 2048;
  int64_t image_tokens = 576;
  std::string note;
};

void add_note(std::string* note, const std::string& line) {
  if (line.empty()) return;
  if (!note->empty()) *note += "; ";
  *note += line;
}

// config.json of a LLaVA (or plain LLaMA) model directory; optional. The maximum sequence length
// is resolve_max_length's, as training and evaluation resolve it.
ModelLimits read_model_limits(const std::string& model_dir, int64_t model_max_length) {
  ModelLimits limits;
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path);
  int64_t max_positions = 0;
  if (!in) {
    limits.note = path + " not found: assuming 576 image tokens (CLIP ViT-L/14-336)";
  } else {
    json config;
    try {
      config = json::parse(in);
    } catch (const json::exception& e) {
      fail(ErrorKind::kUser, path + ": not valid JSON: " + e.what());
    }
    const json text = config.value("text_config", config);
    max_positions = text.value("max_position_embeddings", int64_t{0});
    if (config.contains("vision_config")) {
      // CLIPVisionConfig defaults where the file leaves them out.
      const int64_t size = config["vision_config"].value("image_size", int64_t{224});
      const int64_t patch = config["vision_config"].value("patch_size", int64_t{32});
      if (patch <= 0) fail(ErrorKind::kUser, path + ": vision_config.patch_size must be > 0");
      limits.image_tokens = (size / patch) * (size / patch);
    } else {
      limits.note = path + " has no vision_config: assuming 576 image tokens";
    }
  }
  const MaxLength resolved = resolve_max_length(
      model_max_length > 0 ? model_max_length : kDefaultModelMaxLength, max_positions);
  limits.max_length = resolved.value;
  add_note(&limits.note, resolved.notice());
  return limits;
}

json summary(std::vector<int64_t> v) {
  if (v.empty()) return nullptr;
  std::sort(v.begin(), v.end());
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  auto pct = [&](double p) {
    return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
  };
  return json{
      {"min", v.front()}, {"mean", mean}, {"p50", pct(0.5)}, {"p95", pct(0.95)}, {"max", v.back()}};
}

// Token lengths after splicing the image features, truncation and masking, per sample.
// The spliced position just past the last image token; 0 without an image.
int64_t image_end_position(const TokenizedSample& t, int64_t image_tokens) {
  int64_t position = 0, end = 0;
  for (int64_t id : t.input_ids) {
    if (id == kImageTokenIndex) {
      position += image_tokens;
      end = position;
    } else {
      ++position;
    }
  }
  return end;
}

json check_tokens(const std::vector<Indexed>& samples, const CheckOptions& opt,
                  std::vector<std::vector<DataProblem>>* per_sample,
                  std::vector<std::optional<RenderedSample>>* shown) {
  const Tokenizer tok = Tokenizer::load(opt.model_dir);
  const ModelLimits limits = read_model_limits(opt.model_dir, opt.max_length);
  // --show N: the first N samples that get tokenised.
  int64_t show_limit = 0;
  for (size_t i = 0, n = 0; i < samples.size() && n < static_cast<size_t>(opt.show); ++i) {
    if (samples[i].valid) ++n;
    show_limit = static_cast<int64_t>(i) + 1;
  }
  std::vector<int64_t> lengths(samples.size()), supervised(samples.size());
  std::vector<char> truncated(samples.size()), mismatch(samples.size());
  const int threads = opt.threads > 0 ? opt.threads : default_threads();
  std::vector<char> tokenized(samples.size());
  parallel_for(samples.size(), threads, [&](size_t i) {
    const Indexed& s = samples[i];
    if (!s.valid) return;
    tokenized[i] = 1;
    const TokenizedSample t =
        tokenize_sample(s.sample, tok, !s.sample.image.empty(), limits.max_length);
    lengths[i] = spliced_length(t, limits.image_tokens);
    supervised[i] = supervised_after_truncation(t, limits.image_tokens, limits.max_length);
    if (static_cast<int64_t>(i) < show_limit)
      (*shown)[i] = render_sample(t, tok, limits.image_tokens, limits.max_length);
    auto& out = (*per_sample)[i];
    if (t.mismatch) {
      mismatch[i] = 1;
      out.push_back(problem(s, "tokenization_mismatch",
                            "the rounds do not tokenise to the whole conversation, so LLaVA "
                            "masks every label (the sample trains on nothing)",
                            true, "look for \"</s>\" or \" ASSISTANT: \" inside a value"));
      return;
    }
    const int64_t image_end = image_end_position(t, limits.image_tokens);
    if (image_end > limits.max_length) {
      out.push_back(problem(
          s, "image_truncated",
          "the image's " + std::to_string(limits.image_tokens) + " tokens end at position " +
              std::to_string(image_end) + ", past max length " + std::to_string(limits.max_length) +
              ": the model would see part of the image",
          true, "shorten the text before <image> (it is moved to the front of the first turn)"));
    }
    if (lengths[i] > limits.max_length) {
      truncated[i] = 1;
      out.push_back(problem(
          s, "truncated",
          std::to_string(lengths[i]) + " tokens (with " + std::to_string(limits.image_tokens) +
              " per image) exceed max length " + std::to_string(limits.max_length) + "; " +
              std::to_string(t.supervised_tokens - supervised[i]) + " of " +
              std::to_string(t.supervised_tokens) + " supervised tokens are cut",
          false));
    }
    if (supervised[i] == 0) {
      out.push_back(problem(
          s, "no_supervised_tokens",
          t.supervised_tokens == 0
              ? std::string("every label is masked: the sample has no answer token to train on")
              : "the whole answer (" + std::to_string(t.supervised_tokens) +
                    " supervised tokens) falls past max length " +
                    std::to_string(limits.max_length) + ": nothing is left to train on",
          true,
          t.supervised_tokens == 0
              ? "give every human turn a non-empty gpt answer"
              : "shorten the question, or raise model_max_length (at most the model's "
                "max_position_embeddings)"));
    }
  });
  auto kept = [&](const std::vector<int64_t>& v) {
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (tokenized[i]) out.push_back(v[i]);
    }
    return out;
  };
  json stats{{"tokenizer", tok.path()},
             {"max_length", limits.max_length},
             {"image_tokens", limits.image_tokens},
             {"samples", std::count(tokenized.begin(), tokenized.end(), 1)},
             {"tokens", summary(kept(lengths))},
             {"supervised_tokens", summary(kept(supervised))},
             {"truncated", std::count(truncated.begin(), truncated.end(), 1)},
             {"zero_supervised", std::count(supervised.begin(), supervised.end(), 0) -
                                     std::count(tokenized.begin(), tokenized.end(), 0)},
             {"mismatches", std::count(mismatch.begin(), mismatch.end(), 1)}};
  if (!limits.note.empty()) stats["note"] = limits.note;
  return stats;
}

}  // namespace

int64_t CheckReport::errors() const {
  return std::count_if(problems.begin(), problems.end(),
                       [](const DataProblem& p) { return p.error; });
}

int64_t CheckReport::warnings() const { return static_cast<int64_t>(problems.size()) - errors(); }

json CheckReport::to_json() const {
  json list = json::array();
  for (const DataProblem& p : problems) {
    list.push_back({{"severity", p.error ? "error" : "warning"},
                    {"kind", p.kind},
                    {"index", p.index},
                    {"id", p.id},
                    {"message", p.message},
                    {"hint", p.hint}});
  }
  json out{{"path", path},       {"samples", samples},        {"ok", ok()},
           {"errors", errors()}, {"warnings", warnings()},    {"counts_by_kind", counts_by_kind},
           {"problems", list},   {"token_stats", token_stats}};
  if (!shown.empty()) {
    json rendered = json::array();
    for (const ShownSample& s : shown) {
      rendered.push_back({{"index", s.index},
                          {"id", s.id},
                          {"length", s.rendered.length},
                          {"max_length", s.rendered.max_length},
                          {"text", format_rendered(s.rendered, /*color=*/false)}});
    }
    out["shown"] = std::move(rendered);
  }
  return out;
}

CheckReport check_data(const std::string& json_path, const CheckOptions& opt) {
  CheckReport report;
  report.path = json_path;
  std::vector<Indexed> samples;
  std::vector<DataProblem> structural;
  report.samples = for_each_array_element(
      json_path,
      [&](int64_t index, json& element) {
        Indexed s{index, {}, false};
        s.valid = check_sample(element, index, &structural, &s.sample);
        samples.push_back(std::move(s));
      },
      &structural);
  check_duplicate_ids(samples, &structural);

  // Image files are checked for every sample that names one, valid or not. Decoding is CPU
  // bound and each thread holds one image at a time, so the threads bound the memory in flight;
  // headers alone are I/O bound, so more threads than cores.
  const bool folder_missing = check_image_folder(samples, opt.image_folder, &structural);
  std::vector<std::vector<DataProblem>> per_sample(samples.size());
  const int image_threads = opt.threads > 0     ? opt.threads
                            : opt.decode_images ? default_threads()
                                                : std::max(8, default_threads());
  parallel_for(samples.size(), image_threads, [&](size_t i) {
    const std::string& image = samples[i].sample.image;
    if (image.empty() || (folder_missing && image[0] != '/')) return;
    check_image(samples[i], opt, &per_sample[i]);
  });
  std::vector<std::optional<RenderedSample>> shown(samples.size());
  if (!opt.model_dir.empty()) report.token_stats = check_tokens(samples, opt, &per_sample, &shown);
  for (size_t i = 0; i < samples.size(); ++i) {
    if (shown[i]) {
      report.shown.push_back(
          ShownSample{samples[i].index, samples[i].sample.id, std::move(*shown[i])});
    }
  }

  report.problems = std::move(structural);
  for (auto& list : per_sample) {
    report.problems.insert(report.problems.end(), list.begin(), list.end());
  }
  std::stable_sort(report.problems.begin(), report.problems.end(),
                   [](const DataProblem& a, const DataProblem& b) { return a.index < b.index; });
  for (const DataProblem& p : report.problems) ++report.counts_by_kind[p.kind];
  return report;
}

}  // namespace sweep::data
