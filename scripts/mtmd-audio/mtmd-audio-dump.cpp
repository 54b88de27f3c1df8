// Reference dump for the lfm2a audio path of llama.cpp's libmtmd (built by scripts/build-mtmd-audio.mjs).
// Usage: mtmd-audio-dump MMPROJ SAMPLES.f32 OUT_PREFIX [n_threads]
//   SAMPLES.f32: raw little-endian float32 mono PCM at 16 kHz.
// Writes OUT_PREFIX.mel (int32 n_len, int32 n_mel, then n_mel x n_len floats, mel-major as libmtmd keeps it)
// and OUT_PREFIX.emb (int32 n_tokens, int32 n_embd, then n_tokens x n_embd floats), one file per mel chunk
// concatenated (lfm2a yields a single chunk). Runs exactly libmtmd's preprocessor and clip encoder.
#include "clip.h"
#include "clip-impl.h"
#include "mtmd-audio.h"
#include "ggml-backend.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

// MTMD_AUDIO_DUMP_DIR set: every named F32 graph tensor is written there as NAME.bin (int64 ne[4], data),
// for locating a divergence stage by stage.
static bool dump_tensor_cb(struct ggml_tensor * t, bool ask, void * user) {
    const char * dir = (const char *) user;
    if (ask) return t->type == GGML_TYPE_F32 && t->name[0] != 0;
    if (t->type != GGML_TYPE_F32 || !ggml_is_contiguous(t)) return true;
    std::vector<float> data(ggml_nelements(t));
    ggml_backend_tensor_get(t, data.data(), 0, ggml_nbytes(t));
    std::string path = std::string(dir) + "/" + t->name + ".bin";
    FILE * f = fopen(path.c_str(), "wb");
    if (f) { fwrite(t->ne, 8, 4, f); fwrite(data.data(), 4, data.size(), f); fclose(f); }
    return true;
}

static bool write_block(FILE * f, int32_t a, int32_t b, const float * data, size_t n) {
    return fwrite(&a, 4, 1, f) == 1 && fwrite(&b, 4, 1, f) == 1 && fwrite(data, 4, n, f) == n;
}

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MMPROJ SAMPLES.f32 OUT_PREFIX [n_threads]\n", argv[0]); return 2; }
    const int n_threads = argc > 4 ? atoi(argv[4]) : 1;
    ggml_backend_load_all();
    clip_context_params params{};
    params.use_gpu = false;
    params.device = nullptr;
    params.flash_attn_type = CLIP_FLASH_ATTN_TYPE_DISABLED;
    params.image_min_tokens = -1;
    params.image_max_tokens = -1;
    params.warmup = false;
    if (const char * dir = getenv("MTMD_AUDIO_DUMP_DIR")) {
        params.cb_eval = dump_tensor_cb;
        params.cb_eval_user_data = (void *) dir;
    }
    clip_init_result res = clip_init(argv[1], params);
    if (!res.ctx_a) { fprintf(stderr, "no audio encoder in %s\n", argv[1]); return 1; }

    FILE * fin = fopen(argv[2], "rb");
    if (!fin) { fprintf(stderr, "cannot open %s\n", argv[2]); return 1; }
    std::vector<float> samples;
    float buf[4096];
    size_t got;
    while ((got = fread(buf, 4, 4096, fin)) > 0) samples.insert(samples.end(), buf, buf + got);
    fclose(fin);

    mtmd_audio_preprocessor_conformer pre(res.ctx_a);
    pre.initialize();
    std::vector<mtmd_audio_mel> chunks;
    if (!pre.preprocess(samples.data(), samples.size(), chunks)) { fprintf(stderr, "preprocess failed\n"); return 1; }

    std::string prefix = argv[3];
    FILE * fmel = fopen((prefix + ".mel").c_str(), "wb");
    FILE * femb = fopen((prefix + ".emb").c_str(), "wb");
    for (auto & mel : chunks) {
        write_block(fmel, (int32_t) mel.n_len, (int32_t) mel.n_mel, mel.data.data(), mel.data.size());
        clip_image_f32 img;
        img.set_size({(int) mel.n_len, (int) mel.n_mel}, false, true);
        img.cpy_buf(mel.data);
        const int n_tokens = clip_n_output_tokens(res.ctx_a, &img);
        const int n_embd = clip_n_mmproj_embd(res.ctx_a);
        clip_image_f32_batch batch;
        batch.is_audio = true;
        batch.entries.push_back(std::move(img));
        std::vector<float> out((size_t) n_tokens * n_embd);
        if (!clip_image_batch_encode(res.ctx_a, n_threads, &batch, out)) { fprintf(stderr, "encode failed\n"); return 1; }
        write_block(femb, n_tokens, n_embd, out.data(), out.size());
        fprintf(stderr, "mel %lld x %lld -> %d tokens x %d\n", (long long) mel.n_len, (long long) mel.n_mel, n_tokens, n_embd);
    }
    fclose(fmel);
    fclose(femb);
    clip_free(res.ctx_a);
    if (res.ctx_v) clip_free(res.ctx_v);
    return 0;
}
