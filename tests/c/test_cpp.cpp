/*
 * test_cpp.cpp — the header from C++17.
 *
 * coordkv.h must compile as C++ with warnings as errors and give C linkage to every
 * function; this program includes it, wraps the store and the error in RAII owners the
 * way a C++ user would, and does a put and a get through them.
 */
#include "ckv_test.h"

#include <memory>
#include <string>

namespace {

struct StoreCloser {
    void operator()(ckv_store *store) const { ckv_close(store); }
};
struct EntryFreer {
    void operator()(ckv_entry *entry) const { ckv_entry_free(entry); }
};
using StorePtr = std::unique_ptr<ckv_store, StoreCloser>;
using EntryPtr = std::unique_ptr<ckv_entry, EntryFreer>;

void test_put_get() {
    ckv_error *err = nullptr;
    StorePtr store(test_open_store(""));
    const std::string key = "/cpp/greeting";
    const std::string value = "hello from C++";
    uint64_t revision = 0;

    CHECK_OK(ckv_put(store.get(), key.data(), key.size(),
                     reinterpret_cast<const uint8_t *>(value.data()), value.size(), &revision,
                     &err));
    CHECK(revision > 0);

    ckv_entry *raw = nullptr;
    CHECK_OK(ckv_get(store.get(), key.data(), key.size(), &raw, &err));
    EntryPtr entry(raw);
    size_t len = 0;
    const uint8_t *bytes = ckv_entry_value(entry.get(), &len);
    CHECK(std::string(reinterpret_cast<const char *>(bytes), len) == value);
    CHECK(std::string(ckv_entry_key(entry.get(), nullptr)) == key);
    CHECK(ckv_entry_revision(entry.get()) == revision);

    CHECK_FAILS(CKV_NOT_FOUND, ckv_get(store.get(), KEY("/cpp/missing"), &raw, &err));
}

}  // namespace

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_put_get);
    return test_finish();
}
