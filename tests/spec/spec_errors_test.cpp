// Every validation error of a sweep file: the position, the message and the hint are asserted.
#include <gtest/gtest.h>

#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using testing::parse_error;

TEST(SpecErrors, UnknownGridKeyNamesTheClosestKey) {
  Error e = parse_error("grid:\n  lora_r: [4, 8]\n  lora_alpah: [16]\n");
  EXPECT_EQ(e.kind, ErrorKind::kUser);
  EXPECT_EQ(e.message, "t.yaml:9:3: unknown key 'lora_alpah' in grid");
  EXPECT_EQ(e.hint, "did you mean lora_alpha?");
}

// Found by fuzz/fuzz_sweep_spec: a byte that is not UTF-8 in a value reached nlohmann::json's
// dump (an error message, a job hash), which throws instead of returning an error.
TEST(SpecErrors, TextThatIsNotUtf8IsRefusedWithItsPosition) {
  const std::string line = "  lr_scheduler: caf\xe9 au lait\n";
  Error e = parse_error("train:\n" + line);
  EXPECT_EQ(e.kind, ErrorKind::kUser);
  const size_t byte = testing::kHead.size() + 7 + 19;
  EXPECT_EQ(e.message,
            "t.yaml:8:20: the sweep file is not valid UTF-8 (byte " + std::to_string(byte) + ")");
  EXPECT_EQ(e.hint, "save the file as UTF-8");
  // Overlong forms, surrogates and a sequence cut short are refused alike.
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    EXPECT_NE(parse_error(std::string("# ") + bad + "\n").message.find("not valid UTF-8"),
              std::string::npos)
        << bad;
  }
  // Valid multi-byte text (a comment in Japanese, a euro sign) still parses.
  EXPECT_TRUE(testing::parse("# \xe6\x97\xa5\xe6\x9c\xac \xe2\x82\xac\n").ok());
}

TEST(SpecErrors, UnknownTopLevelKeyNamesTheClosestKey) {
  Error e = parse_error("gird:\n  lora_r: [4]\n");
  EXPECT_EQ(e.message, "t.yaml:7:1: unknown key 'gird' at the top level");
  EXPECT_EQ(e.hint, "did you mean grid?");
}

TEST(SpecErrors, UnknownTrainKeyNamesTheClosestKey) {
  Error e = parse_error("train:\n  max_step: 10\n");
  EXPECT_EQ(e.message, "t.yaml:8:3: unknown key 'max_step' in train");
  EXPECT_EQ(e.hint, "did you mean max_steps?");
}

TEST(SpecErrors, UnknownKeyWithNothingCloseListsTheAllowedKeys) {
  Error e = parse_error("objective: {metric: val_loss, direction: min}\n");
  EXPECT_EQ(e.message, "t.yaml:7:31: unknown key 'direction' in objective");
  EXPECT_EQ(e.hint, "allowed keys: metric, mode");
}

TEST(SpecErrors, RankMustBeAPositiveInteger) {
  Error e = parse_error("grid:\n  lora_r: [4, 0]\n");
  EXPECT_EQ(e.message, "t.yaml:8:15: grid.lora_r[1] = 0: must be an integer >= 1");
  EXPECT_EQ(e.hint, "lora_r: LoRA rank r; default 8");
  EXPECT_EQ(parse_error("grid:\n  lora_r: [2.5]\n").message,
            "t.yaml:8:12: grid.lora_r[0] = 2.5: must be an integer >= 1");
  EXPECT_EQ(parse_error("train:\n  lora_r: eight\n").message,
            "t.yaml:8:11: train.lora_r = eight: must be an integer >= 1");
}

// Found by fuzz/fuzz_sweep_spec (UBSan): an integer key given a float beyond long long's range
// was cast before its range was checked (undefined behaviour); NaN and infinity likewise.
TEST(SpecErrors, AHugeOrNonFiniteFloatWhereAnIntegerGoesIsRefused) {
  for (const std::string value : {"2.88889e+34", "-2.88889e+34", ".nan", ".inf"}) {
    EXPECT_EQ(parse_error("retries: " + value + "\n").message,
              "t.yaml:7:10: retries = " + value + ": must be an integer >= 0");
  }
}

TEST(SpecErrors, BatchSizeMustBeAPositiveInteger) {
  EXPECT_EQ(parse_error("grid:\n  batch_size: -8\n").message,
            "t.yaml:8:15: grid.batch_size = -8: must be an integer >= 1");
}

TEST(SpecErrors, LearningRateMustNotBeNegative) {
  // 0 is allowed: a control job whose adapters never move (the learning check flags it).
  EXPECT_EQ(parse_error("grid:\n  learning_rate: [1.0e-4, -1.0e-4]\n").message,
            "t.yaml:8:27: grid.learning_rate[1] = -1.0e-4: must be a number >= 0");
}

TEST(SpecErrors, DropoutMustBeInTheUnitInterval) {
  Error e = parse_error("train:\n  lora_dropout: 1.0\n");
  EXPECT_EQ(e.message, "t.yaml:8:17: train.lora_dropout = 1.0: must be a number in [0, 1)");
  EXPECT_EQ(e.hint, "lora_dropout: dropout on the LoRA branch input; default 0.05");
}

TEST(SpecErrors, SchedulerMustBeInItsSetAndTyposAreNamed) {
  Error e = parse_error("train:\n  lr_scheduler: cosin\n");
  EXPECT_EQ(e.message,
            "t.yaml:8:17: train.lr_scheduler = cosin: must be one of cosine, linear, constant");
  EXPECT_EQ(e.hint, "did you mean cosine?");
}

TEST(SpecErrors, BooleanKeysTakeOnlyTrueOrFalse) {
  EXPECT_EQ(parse_error("train:\n  use_rslora: yes\n").message,
            "t.yaml:8:15: train.use_rslora = yes: must be true or false");
}

TEST(SpecErrors, QuotedNumberIsAString) {
  EXPECT_EQ(parse_error("train:\n  max_steps: \"60\"\n").message,
            "t.yaml:8:14: train.max_steps = 60: must be an integer >= 1");
}

TEST(SpecErrors, KeyWithoutValueIsNamed) {
  Error e = parse_error("train:\n  max_steps:\n  seed: 1\n");
  EXPECT_EQ(e.message, "t.yaml:8:3: train.max_steps has no value");
}

TEST(SpecErrors, EmptyGridListIsRejected) {
  Error e = parse_error("grid:\n  lora_r: []\n");
  EXPECT_EQ(e.message, "t.yaml:8:11: grid.lora_r is an empty list");
  EXPECT_EQ(e.hint, "give at least one value, or remove the key from grid:");
  EXPECT_EQ(
      parse_error("grid:\n  lora_r: [4]\n  lora_alpha: {times: lora_r, values: []}\n").message,
      "t.yaml:9:15: grid.lora_alpha.values is missing or empty");
}

TEST(SpecErrors, LinkToAKeyOutsideTheGridIsRejected) {
  Error e = parse_error("grid:\n  lora_r: [4]\n  lora_alpha: {times: lora_rank, values: [1]}\n");
  EXPECT_EQ(e.message, "t.yaml:9:23: grid.lora_alpha: times: lora_rank is not a grid key");
  EXPECT_EQ(e.hint, "did you mean lora_r?");
}

TEST(SpecErrors, LinkToAFixedTrainKeySaysToMoveIt) {
  Error e =
      parse_error("train:\n  lora_r: 8\ngrid:\n  lora_alpha: {times: lora_r, values: [1, 2]}\n");
  EXPECT_EQ(e.message, "t.yaml:10:23: grid.lora_alpha: times: lora_r is not a grid key");
  EXPECT_EQ(e.hint,
            "lora_r is fixed in train:; move it into grid: or list lora_alpha's values directly");
}

TEST(SpecErrors, LinkToItselfOrToALinkedKeyIsRejected) {
  EXPECT_EQ(parse_error("grid:\n  lora_alpha: {times: lora_alpha, values: [1]}\n").message,
            "t.yaml:8:23: grid.lora_alpha: times: lora_alpha links the key to itself");
  Error e = parse_error(
      "grid:\n  lora_r: [4]\n  lora_alpha: {times: lora_r, values: [2]}\n"
      "  learning_rate: {times: lora_alpha, values: [1.0e-5]}\n");
  EXPECT_EQ(e.message, "t.yaml:10:26: grid.learning_rate: times: lora_alpha is itself linked");
}

TEST(SpecErrors, LinkedValueMustBeAllowedForItsKey) {
  Error e = parse_error("grid:\n  lora_r: [3]\n  batch_size: {times: lora_r, values: [0.5]}\n");
  EXPECT_EQ(e.message,
            "t.yaml:9:40: grid.batch_size = 0.5 × lora_r (3) = 1.5: must be an integer >= 1");
}

TEST(SpecErrors, LinkNeedsTimes) {
  EXPECT_EQ(parse_error("grid:\n  lora_alpha: {values: [1]}\n").message,
            "t.yaml:8:15: grid.lora_alpha: a link needs `times: KEY`");
  EXPECT_EQ(parse_error("grid:\n  lora_alpha: {time: lora_r, values: [1]}\n").hint,
            "did you mean times?");
}

TEST(SpecErrors, DuplicateKeysAreRejectedWithBothLines) {
  Error e = parse_error("grid:\n  lora_r: [4]\n  lora_r: [8]\n");
  EXPECT_EQ(e.message, "t.yaml:9:3: duplicate key 'lora_r' (first at line 8)");
  EXPECT_EQ(parse_error("name: again\n").message,
            "t.yaml:7:1: duplicate key 'name' (first at line 1)");
}

TEST(SpecErrors, KeyInBothTrainAndGridIsRejected) {
  Error e = parse_error("train:\n  lora_r: 8\ngrid:\n  lora_r: [4, 8]\n");
  EXPECT_EQ(e.message, "t.yaml:10:3: grid.lora_r is also fixed in train:");
}

TEST(SpecErrors, SyntaxErrorHasItsPosition) {
  Error e = parse_error("grid:\n  lora_r: [4, 8\n");
  EXPECT_EQ(e.message.rfind("t.yaml:", 0), 0u);
  EXPECT_NE(e.message.find("YAML syntax error: "), std::string::npos);
}

TEST(SpecErrors, MissingRequiredKeysAreNamed) {
  auto r = parse_sweep_spec("name: t\n", "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "t.yaml:1:1: missing required key 'base_model'");
  EXPECT_EQ(r.error().hint, "e.g. base_model: builtin:tiny-llava");
  auto d =
      parse_sweep_spec("name: t\nbase_model: m\ndata: {train: a.json, val: b.json}\n", "t.yaml");
  EXPECT_EQ(d.error().message, "t.yaml:3:7: missing required key 'data.image_folder'");
  EXPECT_EQ(parse_sweep_spec("", "t.yaml").error().message, "t.yaml: the sweep file is empty");
}

TEST(SpecErrors, NameMustBeAPlainWord) {
  EXPECT_EQ(parse_sweep_spec("name: my sweep\n", "t.yaml").error().message,
            "t.yaml:1:7: name = my sweep: must use only letters, digits, _ . -");
}

TEST(SpecErrors, ObjectiveMetricTypoIsNamedButModeMismatchIsAllowed) {
  Error e = parse_error("objective: {metric: val_los}\n");
  EXPECT_EQ(e.message,
            "t.yaml:7:21: objective.metric = val_los: must be one of val_loss, val_token_acc, "
            "val_exact_match");
  EXPECT_EQ(e.hint, "did you mean val_loss?");
  EXPECT_EQ(parse_error("objective: {metric: val_loss, mode: maximum}\n").message,
            "t.yaml:7:37: objective.mode = maximum: must be one of min, max");
  EXPECT_TRUE(testing::parse("objective: {metric: val_loss, mode: max}\n").ok());
}

TEST(SpecErrors, ResourcesMixingCpuSlotsAndGpusAreRejected) {
  EXPECT_EQ(parse_error("resources: {gpus: [0, 1], slots: 2}\n").message,
            "t.yaml:7:34: resources.slots is for CPU runs, but gpus is set");
  EXPECT_EQ(parse_error("resources: {jobs_per_gpu: 2}\n").message,
            "t.yaml:7:27: resources.jobs_per_gpu needs resources.gpus");
  EXPECT_EQ(parse_error("resources: {gpus: [0, 0]}\n").message,
            "t.yaml:7:23: resources.gpus lists GPU 0 twice");
  EXPECT_EQ(parse_error("resources: {slots: 0}\n").message,
            "t.yaml:7:20: resources.slots = 0: must be an integer >= 1");
  EXPECT_EQ(parse_error("resources: {gpus: []}\n").message,
            "t.yaml:7:19: resources.gpus = []: must be a non-empty list of GPU indices");
}

TEST(SpecErrors, LimitsAreChecked) {
  EXPECT_EQ(parse_error("retries: -1\n").message,
            "t.yaml:7:10: retries = -1: must be an integer >= 0");
  Error e = parse_error("max_job_time: 30 min\n");
  EXPECT_EQ(e.message, "t.yaml:7:15: max_job_time = 30 min: not a duration");
  EXPECT_EQ(e.hint,
            "seconds (e.g. 1800) or a string such as \"30m\", \"2h\", \"1h30m\"; 0: no limit");
}

TEST(SpecErrors, IncludePointMustGiveEveryGridKey) {
  Error e =
      parse_error("grid:\n  lora_r: [4]\n  learning_rate: [1.0e-3]\ninclude:\n  - {lora_r: 32}\n");
  EXPECT_EQ(e.message, "t.yaml:11:5: include[0] lacks grid key learning_rate");
  EXPECT_EQ(e.hint, "an include point is a whole job: give every grid key a value");
  EXPECT_EQ(parse_error("grid:\n  lora_r: [4]\ninclude:\n  - {lora_r: 0}\n").message,
            "t.yaml:10:14: include[0].lora_r = 0: must be an integer >= 1");
}

TEST(SpecErrors, ExcludeMayNameOnlyGridKeys) {
  Error e = parse_error("grid:\n  lora_r: [4, 8]\nexclude:\n  - {lora_rr: 4}\n");
  EXPECT_EQ(e.message, "t.yaml:10:6: exclude[0].lora_rr is not a grid key");
  EXPECT_EQ(e.hint, "did you mean lora_r?");
  EXPECT_EQ(parse_error("grid:\n  lora_r: [4, 8]\nexclude:\n  - {seed: 1}\n").hint,
            "exclude matches grid keys: lora_r");
  EXPECT_EQ(parse_error("grid:\n  lora_r: [4, 8]\nexclude:\n  - {}\n").message,
            "t.yaml:10:5: exclude[0] must be a non-empty mapping of grid keys to values");
}

TEST(SpecErrors, WorkerCommandMustBeStrings) {
  EXPECT_EQ(parse_error("worker: {command: []}\n").message,
            "t.yaml:7:19: worker.command must be a non-empty list of strings");
  EXPECT_EQ(parse_error("worker: {cmd: [x]}\n").hint, "allowed keys: command");
}

TEST(SpecErrors, MissingFileIsNotFound) {
  auto r = load_sweep_spec("/nonexistent/sweep.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(r.error().message, "/nonexistent/sweep.yaml: no such sweep file");
}

// Ten levels of nine aliases each (9^10 nodes once expanded) under an unknown key: refused at the
// alias that passes the limit (line 13, "l5", the first level past 100,000 nodes), before
// anything walks the document.
TEST(SpecErrors, NestedAliasesPastTheNodeLimitAreRefusedBeforeExpanding) {
  std::string bomb = "lol:\n  l0: &l0 [x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 10; ++level) {
    std::string prev = "*l" + std::to_string(level - 1);
    bomb += "  l" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 9; ++i) bomb += (i ? ", " : "") + prev;
    bomb += "]\n";
  }
  Error e = parse_error(bomb);
  EXPECT_EQ(e.kind, ErrorKind::kUser);
  EXPECT_EQ(e.message.rfind("t.yaml:13:", 0), 0u) << e.message;
  EXPECT_NE(e.message.find(": the document expands to more than 100000 YAML nodes once its "
                           "aliases are replaced (at alias *l4)"),
            std::string::npos)
      << e.message;
  EXPECT_NE(e.hint.find("fewer nested aliases"), std::string::npos) << e.hint;
}

TEST(SpecErrors, AliasesBelowTheNodeLimitAreRead) {
  auto spec = testing::parse("grid:\n  lora_r: &r [4, 8]\n  lora_alpha: *r\n");
  EXPECT_TRUE(spec.ok()) << spec.error().to_string();
}

TEST(SpecErrors, MaxImagePixelsIsAPositiveIntegerUnderData) {
  EXPECT_EQ(testing::parse("  max_image_pixels: 200000000\n")->data.max_image_pixels, 200000000);
  EXPECT_EQ(testing::parse("")->data.max_image_pixels, 0);  // the data check's default
  const Error e = parse_error("  max_image_pixels: 0\n");
  EXPECT_NE(e.message.find("data.max_image_pixels = 0: must be an integer >= 1"), std::string::npos)
      << e.message;
}

}  // namespace
}  // namespace sweep
