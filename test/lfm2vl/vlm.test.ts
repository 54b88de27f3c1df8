// LFM2-VL end to end: loadModel(text, { mmproj }), encodeImage, chat with image parts (and OpenAI image_url
// data: URLs), images reused from the session cache, and text logits after an image prompt vs llama.cpp's mtmd.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode as encodePng } from "fast-png";
import { concatChunks } from "../../src/formats/gguf-writer.js";
import { syntheticGguf } from "../../src/models/synthetic.js";
import { syntheticMmproj } from "../../src/models/lfm2vl/mmproj.js";
import { loadModel } from "../../src/runtime/load.js";
import type { Model } from "../../src/runtime/model.js";
import { planImage } from "../../src/models/lfm2vl/preprocess.js";
import { llamaTool } from "../../scripts/build-llama-tools.mjs";
import { createOpenAIHandler } from "../../src/server/openai.js";

const TEXT = { hiddenSize: 64, nLayers: 3, nHeads: 4, nKv: 2, ffDim: 128, attn: [1], vocabSize: 2048 };
const VISION = { hiddenSize: 64, ffDim: 128, nLayers: 2, nHeads: 4, projHidden: 96, outDim: 64 };
const mtmdDump = llamaTool("mtmd-dump");
const dump = mtmdDump.path ?? "";

function pixels(w: number, h: number, seed = 0): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = ((Math.imul(i + seed, 2654435761) >>> 24) ^ ((i / 3 / w) & 0xff)) & 0xff;
  return rgb;
}
const png = (w: number, h: number, seed = 0) => encodePng({ width: w, height: h, data: pixels(w, h, seed), channels: 3, depth: 8 });

describe("LFM2-VL model API", () => {
  let dir: string, textPath: string, mmPath: string, model: Model;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lfm2vl-api-"));
    textPath = join(dir, "text.gguf"); mmPath = join(dir, "mmproj.gguf");
    writeFileSync(textPath, concatChunks(syntheticGguf({ shape: TEXT, weightType: "F32", seed: 11 })));
    writeFileSync(mmPath, concatChunks(syntheticMmproj({ shape: VISION, weightType: "F32", seed: 12 })));
    model = await loadModel(textPath, { mmproj: mmPath, threads: 1 });
  }, 120_000);
  afterAll(() => { model?.dispose(); rmSync(dir, { recursive: true, force: true }); });

  it("encodeImage gives the prompt tokens (markers, one <image> per row) and the rows", async () => {
    const tok = model.tokenizer!;
    const r = await model.encodeImage(png(1152, 768));
    expect(r.rows).toBe(planImage(1152, 768).tokens); // 6 tiles of 256 + a 608x416 thumbnail (247)
    expect(r.rows).toBe(6 * 256 + 247);
    expect(r.embeddings.length).toBe(r.rows * 64);
    expect(r.grid).toEqual({ cols: 3, rows: 2, thumbnail: true });
    expect(r.tokens.filter((t) => t === tok.tokenId("<image>")).length).toBe(r.rows);
    expect(tok.decode(r.tokens.filter((t) => t !== tok.tokenId("<image>")), { skipSpecial: false } as never))
      .toBe("<|image_start|><|img_row_1_col_1|><|img_row_1_col_2|><|img_row_1_col_3|><|img_row_2_col_1|><|img_row_2_col_2|>" +
        "<|img_row_2_col_3|><|img_thumbnail|><|image_end|>");
    const small = await model.encodeImage({ data: pixels(64, 64), width: 64, height: 64 }, { min_image_tokens: 16 });
    expect(small.rows).toBe(16);
    expect(small.grid).toEqual({ cols: 1, rows: 1, thumbnail: false });
  }, 120_000);

  it("rejects bad images and a model without vision", async () => {
    await expect(model.encodeImage(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ code: "BAD_INPUT" });
    const plain = await loadModel(textPath, { threads: 1 });
    await expect(plain.encodeImage(png(32, 32))).rejects.toMatchObject({ code: "BAD_INPUT" });
    plain.dispose();
    await expect(model.chat([{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }], { maxTokens: 1 }))
      .rejects.toMatchObject({ code: "BAD_INPUT" });
  });

  it("a session of one's own takes image parts too, and gives what model.chat gives (greedy)", async () => {
    const user = { role: "user" as const, content: [{ type: "image", image: png(256, 256, 9) }, { type: "text", text: "What is it?" }] };
    const viaModel = await model.chat([user], { maxTokens: 5, temperature: 0 });
    const s = model.createSession();
    const viaSession = await s.chat([user], { maxTokens: 5, temperature: 0 });
    s.dispose();
    expect(viaSession.text).toBe(viaModel.text);
    expect(viaSession.usage.promptTokens).toBe((await model.renderPrompt([user])).length);
    // a model without an mmproj refuses the part with a typed error instead of dropping it
    const plain = await loadModel(textPath, { threads: 1 });
    await expect(plain.createSession().chat([user], { maxTokens: 1 })).rejects.toMatchObject({ code: "BAD_INPUT" });
    plain.dispose();
  }, 120_000);

  it("the OpenAI server takes image_url parts for a VL model (vLLM's request shape) and answers what model.chat does", async () => {
    const img = png(256, 256, 21);
    const url = `data:image/png;base64,${Buffer.from(img).toString("base64")}`;
    const content = [{ type: "image_url", image_url: { url } }, { type: "text", text: "Describe." }];
    const want = await model.chat([{ role: "user", content }], { maxTokens: 4, temperature: 0 });
    const handler = createOpenAIHandler(model, { modelName: "vl" });
    const res = await handler(new Request("http://x/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "vl", messages: [{ role: "user", content }], max_tokens: 4, temperature: 0 }) }));
    expect(res.status).toBe(200);
    const body = await res.json() as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
    expect(body.choices[0].message.content).toBe(want.text);
    expect(body.usage.prompt_tokens).toBe(want.usage.promptTokens);
  }, 120_000);

  it("chat with image parts; the image of an earlier turn is served from the cache; image_url data: URLs too", async () => {
    const img = png(512, 512, 3);
    const user = { role: "user" as const, content: [{ type: "image", image: img }, { type: "text", text: "Describe." }] };
    const r1 = await model.chat([user], { maxTokens: 4, temperature: 0 });
    expect(r1.usage.promptTokens).toBeGreaterThan(256);
    const url = `data:image/png;base64,${Buffer.from(img).toString("base64")}`;
    const sameAsUrl = { role: "user" as const, content: [{ type: "image_url", image_url: { url } }, { type: "text", text: "Describe." }] };
    const r2 = await model.chat([sameAsUrl, { role: "assistant", content: r1.text }, { role: "user", content: "More." }],
      { maxTokens: 2, temperature: 0 });
    // everything up to the first answer was cached: the image rows are not run again
    expect(r2.usage.cachedTokens).toBeGreaterThanOrEqual(r1.usage.promptTokens);
    // a different image at the same place: the cache stops at the image
    const other = { role: "user" as const, content: [{ type: "image", image: png(512, 512, 4) }, { type: "text", text: "Describe." }] };
    const r3 = await model.chat([other], { maxTokens: 1, temperature: 0 });
    expect(r3.usage.cachedTokens).toBeLessThan(r1.usage.promptTokens - 256);
  }, 120_000);

  describe.skipIf(!mtmdDump.path)(`text logits after an image prompt vs llama.cpp mtmd${mtmdDump.path ? "" : ` (skipped: ${mtmdDump.reason})`}`, () => {
    const before = "<|startoftext|><|im_start|>user\n", after = "Describe this.<|im_end|>\n<|im_start|>assistant\n";
    const run = (w: number, h: number) => {
      const rgbPath = join(dir, `p-${w}.rgb`), out = join(dir, `p-${w}`);
      writeFileSync(rgbPath, pixels(w, h, 1));
      execFileSync(dump, [textPath, mmPath, rgbPath, String(w), String(h), out, "1", `${before}<__media__>${after}`], { stdio: "ignore" });
      const bin = readFileSync(`${out}.bin`);
      return { ...JSON.parse(readFileSync(`${out}.json`, "utf8")), embd: new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4) };
    };
    const compare = async (ids: number[], ref: { logits: number[]; n_past: number }) => {
      expect(ids.length).toBe(ref.n_past);
      const s = model.createSession();
      const logits = await s.forward(ids);
      s.dispose();
      let worst = 0, scale = 0;
      for (let i = 0; i < logits.length; i++) { worst = Math.max(worst, Math.abs(logits[i] - ref.logits[i])); scale = Math.max(scale, Math.abs(ref.logits[i])); }
      return { worst, scale };
    };
    for (const [w, h] of [[512, 512], [1152, 768]]) {
      it(`${w}x${h}: logits within the F32 text tolerance (2e-3), on llama.cpp's image rows and on ours`, async () => {
        const ref = run(w, h);
        const tok = model.tokenizer!;
        const text = (image: number[]) => [...tok.encode(before, { addBos: false }), ...image, ...tok.encode(after, { addBos: false })];
        const mine = await model.encodeImage({ data: pixels(w, h, 1), width: w, height: h });
        // 1. llama.cpp's own image embeddings through our text tower: the text tolerance (F32: 2e-3)
        const injected = await compare(text(model.vision!.addEmbeddings(mine.tokens, ref.embd)), ref);
        // 2. ours end to end: adds the encoder's ~1e-3 differences (fp16 roundings of GELU, attention, patch input).
        // mtmd-dump runs the text tower without flash attention, as the text parity suite does
        const ours = await compare(text(await model.vision!.sessionTokens({ data: pixels(w, h, 1), width: w, height: h })), ref);
        console.log(`${w}x${h}: ${ref.n_past} prompt tokens; max |Δlogit| with llama.cpp's image rows ${injected.worst.toExponential(2)}, ` +
          `end to end ${ours.worst.toExponential(2)} (logits up to ${ours.scale.toFixed(2)})`);
        expect(injected.worst).toBeLessThan(2e-3);
        expect(ours.worst).toBeLessThan(2e-3);
      }, 120_000);
    }
  });
});
