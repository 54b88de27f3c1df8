// Reference dump for LFM2-VL parity: runs llama.cpp's libmtmd on one raw RGB image and writes what it produced.
// Usage: mtmd-dump TEXT.gguf MMPROJ.gguf IMAGE.rgb WIDTH HEIGHT OUT_PREFIX [THREADS] [PROMPT] [MIN_TOK MAX_TOK]
//   IMAGE.rgb: WIDTH*HEIGHT*3 bytes (decoded by the caller, so no decoder difference enters the comparison).
//   PROMPT must contain "<__media__>" (default: just the marker).
// Writes OUT_PREFIX.json: the chunk layout (text token ids; per image chunk its n_tokens, nx, ny, encode ms)
// and the last token's logits when the prompt has text after the image; OUT_PREFIX.bin: every image chunk's
// projected embeddings, f32, in chunk order (rows x n_embd).
#include "mtmd.h"
#include "mtmd-helper.h"
#include "llama.h"
#include "ggml-backend.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char ** argv) {
    if (argc < 7) { fprintf(stderr, "usage: %s TEXT MMPROJ IMAGE.rgb W H OUT [THREADS] [PROMPT] [MIN MAX]\n", argv[0]); return 2; }
    const int w = atoi(argv[4]), h = atoi(argv[5]);
    const int n_threads = argc > 7 ? atoi(argv[7]) : 1;
    std::string prompt = argc > 8 ? argv[8] : mtmd_default_marker();
    const int min_tok = argc > 10 ? atoi(argv[9]) : -1, max_tok = argc > 10 ? atoi(argv[10]) : -1;
    ggml_backend_load_all();
    llama_log_set(quiet_log, nullptr);
    mtmd_log_set(quiet_log, nullptr);
    mtmd_helper_log_set(quiet_log, nullptr);

    std::vector<unsigned char> rgb((size_t) w * h * 3);
    FILE * f = fopen(argv[3], "rb");
    if (!f || fread(rgb.data(), 1, rgb.size(), f) != rgb.size()) { fprintf(stderr, "cannot read %s\n", argv[3]); return 1; }
    fclose(f);

    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    mtmd_context_params cp = mtmd_context_params_default();
    cp.use_gpu = false; cp.print_timings = false; cp.n_threads = n_threads; cp.warmup = false;
    cp.image_min_tokens = min_tok; cp.image_max_tokens = max_tok;
    mtmd_context * ctx = mtmd_init_from_file(argv[2], model, cp);
    if (!ctx) { fprintf(stderr, "cannot load %s\n", argv[2]); return 1; }

    mtmd_bitmap * bmp = mtmd_bitmap_init(w, h, rgb.data());
    mtmd_input_chunks * chunks = mtmd_input_chunks_init();
    mtmd_input_text text = { prompt.c_str(), prompt.size(), /*add_special*/ false, /*parse_special*/ true };
    const mtmd_bitmap * bitmaps[1] = { bmp };
    if (int rc = mtmd_tokenize(ctx, chunks, &text, bitmaps, 1)) { fprintf(stderr, "tokenize failed: %d\n", rc); return 1; }

    const int n_embd = llama_model_n_embd_inp(model);
    std::string out = std::string(argv[6]);
    FILE * bin = fopen((out + ".bin").c_str(), "wb");
    std::string js = "{\"n_embd\":" + std::to_string(n_embd) + ",\"chunks\":[";
    double total_ms = 0;
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
        const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks, i);
        if (i) js += ",";
        if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
            size_t n = 0;
            const llama_token * toks = mtmd_input_chunk_get_tokens_text(c, &n);
            js += "{\"type\":\"text\",\"tokens\":[";
            for (size_t k = 0; k < n; k++) js += (k ? "," : "") + std::to_string(toks[k]);
            js += "]}";
        } else {
            const mtmd_image_tokens * it = mtmd_input_chunk_get_tokens_image(c);
            const size_t n = mtmd_input_chunk_get_n_tokens(c);
            auto t0 = std::chrono::steady_clock::now();
            if (mtmd_encode_chunk(ctx, c)) { fprintf(stderr, "encode failed\n"); return 1; }
            double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            total_ms += ms;
            fwrite(mtmd_get_output_embd(ctx), sizeof(float), n * n_embd, bin);
            js += "{\"type\":\"image\",\"n_tokens\":" + std::to_string(n) + ",\"nx\":" +
                  std::to_string(mtmd_image_tokens_get_nx(it)) + ",\"ny\":" + std::to_string(mtmd_image_tokens_get_ny(it)) +
                  ",\"encode_ms\":" + std::to_string(ms) + "}";
        }
    }
    fclose(bin);
    js += "],\"encode_ms\":" + std::to_string(total_ms);

    if (prompt != mtmd_default_marker()) {
        // end to end: evaluate the whole prompt (text + image embeddings) and report the last token's logits
        llama_context_params lp = llama_context_default_params();
        lp.n_ctx = 8192; lp.n_batch = 2048; lp.n_ubatch = 2048; lp.n_threads = n_threads; lp.n_threads_batch = n_threads;
        // LFM2_DUMP_FLASH_ATTN=1: flash attention (llama.cpp's default on CPU is auto = on)
        const char * fa = getenv("LFM2_DUMP_FLASH_ATTN");
        lp.flash_attn_type = fa && atoi(fa) ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        llama_context * lctx = llama_init_from_model(model, lp);
        llama_pos n_past = 0;
        auto t0 = std::chrono::steady_clock::now();
        if (mtmd_helper_eval_chunks(ctx, lctx, chunks, 0, 0, lp.n_batch, true, &n_past)) { fprintf(stderr, "eval failed\n"); return 1; }
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        const float * logits = llama_get_logits_ith(lctx, -1);
        const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
        js += ",\"n_past\":" + std::to_string(n_past) + ",\"prefill_ms\":" + std::to_string(ms) + ",\"logits\":[";
        char buf[32];
        for (int k = 0; k < n_vocab; k++) { snprintf(buf, sizeof buf, "%s%.9g", k ? "," : "", logits[k]); js += buf; }
        js += "]";
        llama_free(lctx);
    }
    js += "}\n";
    FILE * jf = fopen((out + ".json").c_str(), "w");
    fputs(js.c_str(), jf);
    fclose(jf);
    mtmd_input_chunks_free(chunks);
    mtmd_bitmap_free(bmp);
    mtmd_free(ctx);
    llama_model_free(model);
    return 0;
}
