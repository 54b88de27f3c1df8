// Reference dump for the lfm2a audio path of llama.cpp's libmtmd (built by scripts/build-mtmd-audio.mjs).
// Usage: mtmd-audio-dump MMPROJ SAMPLES.f32 OUT_PREFIX [n_threads]
//        mtmd-audio-dump --prompt TEXT_MODEL MMPROJ SAMPLES.f32 PROMPT OUT_PREFIX
//   SAMPLES.f32: raw little-endian float32 mono PCM at 16 kHz.
//   --prompt: PROMPT (special tokens parsed, <__media__> where the audio goes) through libmtmd's tokenizer
//   and encoder and the text model; writes OUT_PREFIX.json {chunks: text token ids / audio row counts,
//   logits of the last position}.
// Writes OUT_PREFIX.mel (int32 n_len, int32 n_mel, then n_mel x n_len floats, mel-major as libmtmd keeps it)
// and OUT_PREFIX.emb (int32 n_tokens, int32 n_embd, then n_tokens x n_embd floats), one file per mel chunk
// concatenated (lfm2a yields a single chunk). Runs exactly libmtmd's preprocessor and clip encoder.
#include "clip.h"
#include "clip-impl.h"
#include "mtmd-audio.h"
#include "ggml-backend.h"
#include "mtmd.h"
#include "llama.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
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

static std::vector<float> read_samples(const char * path) {
    std::vector<float> samples;
    FILE * fin = fopen(path, "rb");
    if (!fin) { fprintf(stderr, "cannot open %s\n", path); exit(1); }
    float buf[4096];
    size_t got;
    while ((got = fread(buf, 4, 4096, fin)) > 0) samples.insert(samples.end(), buf, buf + got);
    fclose(fin);
    return samples;
}

// Evaluates the prompt chunk by chunk (text tokens, then audio embedding rows at the next positions),
// as mtmd_helper_eval_chunks does, without the helper library (which pulls in miniaudio).
static int prompt_main(int argc, char ** argv) {
    if (argc < 7) { fprintf(stderr, "usage: %s --prompt TEXT_MODEL MMPROJ SAMPLES.f32 PROMPT OUT_PREFIX\n", argv[0]); return 2; }
    ggml_backend_load_all();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[2], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[2]); return 1; }
    mtmd_context_params cp = mtmd_context_params_default();
    cp.use_gpu = false; cp.print_timings = false; cp.n_threads = 1; cp.warmup = false;
    mtmd_context * ctx = mtmd_init_from_file(argv[3], model, cp);
    if (!ctx) { fprintf(stderr, "cannot load %s\n", argv[3]); return 1; }
    std::vector<float> samples = read_samples(argv[4]);
    mtmd_bitmap * bmp = mtmd_bitmap_init_from_audio(samples.size(), samples.data());
    mtmd_input_chunks * chunks = mtmd_input_chunks_init();
    std::string prompt = argv[5];
    mtmd_input_text text = { prompt.c_str(), prompt.size(), false, true };
    const mtmd_bitmap * bitmaps[1] = { bmp };
    if (int rc = mtmd_tokenize(ctx, chunks, &text, bitmaps, 1)) { fprintf(stderr, "tokenize failed: %d\n", rc); return 1; }
    llama_context_params lp = llama_context_default_params();
    lp.n_ctx = 4096; lp.n_batch = 2048; lp.n_ubatch = 2048; lp.n_threads = 1; lp.n_threads_batch = 1;
    lp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * lctx = llama_init_from_model(model, lp);
    const int n_embd = llama_model_n_embd_inp(model);
    std::string js = "{\"chunks\":[";
    llama_pos n_past = 0;
    const size_t n_chunks = mtmd_input_chunks_size(chunks);
    for (size_t i = 0; i < n_chunks; i++) {
        const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks, i);
        const bool last_chunk = i + 1 == n_chunks;
        if (i) js += ",";
        if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
            size_t n = 0;
            const llama_token * toks = mtmd_input_chunk_get_tokens_text(c, &n);
            js += "{\"type\":\"text\",\"tokens\":[";
            for (size_t k = 0; k < n; k++) js += (k ? "," : "") + std::to_string(toks[k]);
            js += "]}";
            llama_batch b = llama_batch_init((int) n, 0, 1);
            for (size_t k = 0; k < n; k++) {
                b.token[k] = toks[k]; b.pos[k] = n_past + (llama_pos) k; b.n_seq_id[k] = 1; b.seq_id[k][0] = 0;
                b.logits[k] = last_chunk && k + 1 == n;
            }
            b.n_tokens = (int) n;
            if (llama_decode(lctx, b)) { fprintf(stderr, "decode failed\n"); return 1; }
            llama_batch_free(b);
            n_past += (llama_pos) n;
        } else {
            const size_t n = mtmd_input_chunk_get_n_tokens(c);
            if (mtmd_encode_chunk(ctx, c)) { fprintf(stderr, "encode failed\n"); return 1; }
            const float * embd = mtmd_get_output_embd(ctx);
            llama_batch b = llama_batch_init((int) n, n_embd, 1);
            memcpy(b.embd, embd, n * n_embd * sizeof(float));
            for (size_t k = 0; k < n; k++) {
                b.pos[k] = n_past + (llama_pos) k; b.n_seq_id[k] = 1; b.seq_id[k][0] = 0; b.logits[k] = last_chunk && k + 1 == n;
            }
            b.n_tokens = (int) n;
            if (llama_decode(lctx, b)) { fprintf(stderr, "decode (audio) failed\n"); return 1; }
            llama_batch_free(b);
            n_past += (llama_pos) n;
            js += "{\"type\":\"audio\",\"n_tokens\":" + std::to_string(n) + "}";
        }
    }
    const float * logits = llama_get_logits_ith(lctx, -1);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    js += "],\"n_past\":" + std::to_string(n_past) + ",\"logits\":[";
    char buf[32];
    for (int k = 0; k < n_vocab; k++) { snprintf(buf, sizeof buf, "%s%.9g", k ? "," : "", logits[k]); js += buf; }
    js += "]}\n";
    FILE * jf = fopen((std::string(argv[6]) + ".json").c_str(), "w");
    fputs(js.c_str(), jf);
    fclose(jf);
    llama_free(lctx);
    mtmd_input_chunks_free(chunks);
    mtmd_bitmap_free(bmp);
    mtmd_free(ctx);
    llama_model_free(model);
    return 0;
}

int main(int argc, char ** argv) {
    if (argc > 1 && std::string(argv[1]) == "--prompt") return prompt_main(argc, argv);
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
        const auto t0 = std::chrono::steady_clock::now();
        if (!clip_image_batch_encode(res.ctx_a, n_threads, &batch, out)) { fprintf(stderr, "encode failed\n"); return 1; }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        fprintf(stderr, "encode_ms %.3f\n", ms);
        write_block(femb, n_tokens, n_embd, out.data(), out.size());
        fprintf(stderr, "mel %lld x %lld -> %d tokens x %d\n", (long long) mel.n_len, (long long) mel.n_mel, n_tokens, n_embd);
    }
    fclose(fmel);
    fclose(femb);
    clip_free(res.ctx_a);
    if (res.ctx_v) clip_free(res.ctx_v);
    return 0;
}
