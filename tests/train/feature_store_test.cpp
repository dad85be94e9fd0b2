// The disk layer of the vision-feature cache: keys, entries, corruption and LRU eviction.
#include "worker/train/feature_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace sweep::train {
namespace {
namespace fs = std::filesystem;

class FeatureStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("feature_store_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    image_ = (root_ / "cat.png").string();
    std::ofstream(image_) << "not really a png";
  }
  void TearDown() override { fs::remove_all(root_); }

  FeatureKey key() const {
    FeatureKey k;
    k.fingerprint = "0123456789abcdef";
    k.image = identify_image(image_);
    k.preprocess = PreprocessKey{336, true};
    k.dtype = "Float";
    k.device = "cpu";
    return k;
  }
  static StoredFeatures features(char fill, size_t n = 64) {
    StoredFeatures f;
    f.dtype = 6;
    f.shape = {static_cast<int64_t>(n / 4)};
    f.bytes.assign(n, fill);
    return f;
  }
  std::string cache_dir() const { return (root_ / "cache").string(); }

  fs::path root_;
  std::string image_;
};

const int64_t kNow = static_cast<int64_t>(::time(nullptr));

// Sets the file's times to `seconds_ago` before the test binary started.
void set_mtime(const std::string& path, int64_t seconds_ago) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = kNow - seconds_ago;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

TEST_F(FeatureStoreTest, SecondLookupReturnsTheStoredBytes) {
  FeatureStore store(cache_dir(), FeatureStore::kDefaultMaxBytes);
  EXPECT_FALSE(store.get(key()).has_value());
  ASSERT_TRUE(store.put(key(), features('a')));
  auto hit = store.get(key());
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->bytes, features('a').bytes);
  EXPECT_EQ(hit->shape, features('a').shape);
  EXPECT_EQ(hit->dtype, 6);
  // Another process (a second store on the same directory) sees it too.
  FeatureStore other(cache_dir(), FeatureStore::kDefaultMaxBytes);
  EXPECT_TRUE(other.get(key()).has_value());
}

TEST_F(FeatureStoreTest, EachKeyFieldIsAMissWhenItChanges) {
  FeatureStore store(cache_dir(), FeatureStore::kDefaultMaxBytes);
  ASSERT_TRUE(store.put(key(), features('a')));
  auto changed = [&](auto edit) {
    FeatureKey k = key();
    edit(k);
    EXPECT_NE(k.file_name(), key().file_name());
    return store.get(k).has_value();
  };
  EXPECT_FALSE(changed([](FeatureKey& k) { k.fingerprint = "fedcba9876543210"; }));
  EXPECT_FALSE(changed([](FeatureKey& k) { k.preprocess.image_size = 224; }));
  EXPECT_FALSE(changed([](FeatureKey& k) { k.preprocess.pad_to_square = false; }));
  EXPECT_FALSE(changed([](FeatureKey& k) { k.dtype = "BFloat16"; }));
  EXPECT_FALSE(changed([](FeatureKey& k) { k.device = "cuda"; }));
  EXPECT_FALSE(changed([](FeatureKey& k) { k.image.path += "x"; }));
  EXPECT_TRUE(store.get(key()).has_value());

  // The image file itself: a new mtime, then a new size.
  set_mtime(image_, 100);
  EXPECT_FALSE(store.get(key()).has_value()) << "mtime change must miss";
  ASSERT_TRUE(store.put(key(), features('b')));
  const int64_t mtime = key().image.mtime_ns;
  std::ofstream(image_, std::ios::app) << "more bytes";
  set_mtime(image_, 100);
  ASSERT_EQ(key().image.mtime_ns, mtime);
  EXPECT_FALSE(store.get(key()).has_value()) << "size change must miss";
}

TEST_F(FeatureStoreTest, TruncatedOrCorruptEntryIsAMissAndIsRewritten) {
  FeatureStore store(cache_dir(), FeatureStore::kDefaultMaxBytes);
  ASSERT_TRUE(store.put(key(), features('a')));
  const std::string path = cache_dir() + "/" + key().file_name();
  const auto size = fs::file_size(path);
  for (uintmax_t cut : {uintmax_t{0}, uintmax_t{5}, size / 2, size - 1}) {
    fs::resize_file(path, cut);
    EXPECT_FALSE(store.get(key()).has_value()) << "truncated to " << cut;
    ASSERT_TRUE(store.put(key(), features('a')));
    EXPECT_TRUE(store.get(key()).has_value());
  }
  {  // one payload byte flipped: the checksum catches it
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 3));
    f.put('z');
  }
  EXPECT_FALSE(store.get(key()).has_value());
  // Another key's entry under this name (a hash collision) is not returned.
  FeatureKey other = key();
  other.fingerprint = "ffffffffffffffff";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      << encode_entry(other.canonical(), features('a'));
  EXPECT_FALSE(store.get(key()).has_value());
  EXPECT_TRUE(decode_entry(encode_entry(other.canonical(), features('a')), other.canonical()));
}

TEST_F(FeatureStoreTest, EvictsTheLeastRecentlyUsedEntriesBeyondTheCap) {
  auto key_n = [&](int n) {
    FeatureKey k = key();
    k.fingerprint = "fingerprint-" + std::to_string(n);
    return k;
  };
  const uint64_t entry = encode_entry(key_n(1).canonical(), features('a', 4096)).size();
  FeatureStore store(cache_dir(), entry * 7 / 2);  // room for 3.5 entries
  for (int n = 1; n <= 3; ++n) {
    ASSERT_TRUE(store.put(key_n(n), features('a', 4096)));
    set_mtime(cache_dir() + "/" + key_n(n).file_name(), 100 - 10 * n);  // 1 oldest, 3 newest
  }
  ASSERT_TRUE(store.get(key_n(1)).has_value());  // a hit makes 1 the most recently used
  ASSERT_TRUE(store.put(key_n(4), features('a', 4096)));
  EXPECT_TRUE(store.get(key_n(1)).has_value());
  EXPECT_FALSE(store.get(key_n(2)).has_value()) << "2 was the least recently used";
  EXPECT_TRUE(store.get(key_n(3)).has_value());
  EXPECT_TRUE(store.get(key_n(4)).has_value());
  EXPECT_LE(store.disk_bytes(), store.max_bytes());
}

TEST_F(FeatureStoreTest, ConcurrentWritersNeverShowAReaderHalfAnEntry) {
  // Three stores on one directory stand for three jobs: two rewrite the same entry with
  // different contents while the third reads it.
  FeatureStore a(cache_dir(), FeatureStore::kDefaultMaxBytes);
  FeatureStore b(cache_dir(), FeatureStore::kDefaultMaxBytes);
  FeatureStore reader(cache_dir(), FeatureStore::kDefaultMaxBytes);
  const StoredFeatures fa = features('a', 1 << 16), fb = features('b', 1 << 16);
  std::atomic<bool> done{false};
  std::thread wa([&] {
    for (int i = 0; i < 200; ++i) EXPECT_TRUE(a.put(key(), fa));
  });
  std::thread wb([&] {
    for (int i = 0; i < 200; ++i) EXPECT_TRUE(b.put(key(), fb));
  });
  std::thread watcher([&] {
    wa.join();
    wb.join();
    done = true;
  });
  int hits = 0;
  while (!done) {
    if (auto f = reader.get(key())) {
      ++hits;
      ASSERT_TRUE(f->bytes == fa.bytes || f->bytes == fb.bytes);
    }
  }
  watcher.join();
  EXPECT_GT(hits, 0);
  int files = 0;
  for (const auto& e : fs::directory_iterator(cache_dir())) files += e.is_regular_file();
  EXPECT_EQ(files, 1) << "no temp file is left behind";
}

TEST_F(FeatureStoreTest, OpeningRemovesStaleTempFilesOnly) {
  fs::create_directories(cache_dir());
  const std::string stale = cache_dir() + "/.tmp-1-0-dead.vfeat";
  const std::string fresh = cache_dir() + "/.tmp-2-0-live.vfeat";
  std::ofstream(stale) << "half";
  std::ofstream(fresh) << "half";
  set_mtime(stale, 3600);
  FeatureStore store(cache_dir(), FeatureStore::kDefaultMaxBytes);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));
  EXPECT_EQ(store.disk_bytes(), 0u);
}

TEST(FeatureKey, CanonicalNamesEveryField) {
  FeatureKey k;
  k.fingerprint = "abc";
  k.image = {"/img/a.png", 10, 20};
  k.preprocess = {336, false};
  k.dtype = "BFloat16";
  k.device = "cuda";
  const std::string c = k.canonical();
  for (const char* part : {"vision=abc", "image=/img/a.png", "bytes=10", "mtime_ns=20", "size=336",
                           "aspect=square", "mean=0.481454", "dtype=BFloat16", "device=cuda"})
    EXPECT_NE(c.find(part), std::string::npos) << part << " in " << c;
  EXPECT_EQ(k.file_name().size(), 16u + 6u);
}

}  // namespace
}  // namespace sweep::train
