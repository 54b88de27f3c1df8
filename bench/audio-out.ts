// Speech-out benchmark on synthetic files of the published shapes (docs/lfm2-audio-out.md): the detokenizer's
// real-time factor (codes → 24 kHz PCM time / audio duration; 8 layers × 512, window 30, ISTFT 1280/320), the
// audio head's time per frame (depthformer 6 × 1024 on a 2048-wide state: plain JS, and on the engine with
// depth_linear and the output tables as engine matrices), the head + detokenizer together (RTF of code → PCM with
// the backbone's state given), and model.speak()'s time to first audio chunk and overall RTF with a text model of
// the LFM2.5-Audio-1.5B backbone's shape (1.2B, hidden 2048), on a cold prompt and with the system turn cached.
//   npx tsx bench/audio-out.ts [--frames 50] [--threads 1,2] [--text 1.2B|350M] [--type Q4_0] [--speak-frames 12]
//     [--detok-type F16|Q8_0]
import { mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, syntheticGguf } from "../src/index.js";
import { AudioDetokenizer, readCodeEmbeddings } from "../src/models/lfm2audio/detokenizer.js";
import { loadAudioHead } from "../src/models/lfm2audio/audio-head.js";
import { DETOKENIZER_SHAPE, syntheticAudioHead, syntheticDetokenizerGguf, syntheticVocoderGguf } from "../src/models/lfm2audio/synthetic-out.js";
import { mulberry32, randomTensor } from "../src/models/synthetic.js";
import { LFM2_SHAPES } from "../src/models/lfm2/config.js";
import type { GgmlTypeName } from "../src/core/quant-types.js";

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
const frames = Number(arg("frames", "50"));
const threadList = arg("threads", `1,${availableParallelism()}`).split(",").map(Number).filter((t, i, a) => a.indexOf(t) === i);
const textName = arg("text", "1.2B"), textShape = LFM2_SHAPES[textName as keyof typeof LFM2_SHAPES];
const type = arg("type", "Q4_0") as GgmlTypeName;
const speakFrames = Number(arg("speak-frames", "12"));
const detokType = arg("detok-type", "F16") as GgmlTypeName;

const dir = mkdtempSync(join(tmpdir(), "audio-out-bench-"));
const detokPath = join(dir, "detok.gguf");
writeFileSync(detokPath, Buffer.concat(syntheticDetokenizerGguf({ shape: { ...DETOKENIZER_SHAPE, vocabSize: 2048 }, weightType: detokType })));
const D = textShape.hiddenSize;
const head = syntheticAudioHead({ backboneDim: D, dim: 1024, nLayers: 6, ffDim: 2816 });
const vocoder = Buffer.concat(syntheticVocoderGguf(512, 5, head.tensors, head.meta));
const r = mulberry32(1), codes = Array.from({ length: frames * 8 }, () => Math.floor(r() * 2048));
console.log(`detokenizer: 8 layers × 512 (${detokType} weights), ${frames} frames = ${(frames * 0.08).toFixed(2)} s of audio`);

for (const threads of threadList) {
  const m = await loadModel(detokPath, { threads, chunkSize: 8 });
  const d = new AudioDetokenizer(m.forwardPass, readCodeEmbeddings(vocoder).table);
  d.decode(codes.slice(0, 16)); // warm-up
  const s = d.stream(), t0 = performance.now();
  let first = 0;
  for (let f = 0; f < frames; f++) { s.push(codes.slice(f * 8, f * 8 + 8)); if (f === 0) first = performance.now() - t0; }
  s.end();
  const ms = performance.now() - t0;
  s.dispose();
  console.log(`  threads ${threads}: ${(ms / frames).toFixed(2)} ms/frame, RTF ${(ms / 1000 / (frames * 0.08)).toFixed(3)}, first frame ${first.toFixed(1)} ms (threads used: ${m.info.threads})`);
}

const h = randomTensor(mulberry32(2), D, 1);
const headTime = (hd: ReturnType<typeof loadAudioHead>, n: number) => {
  hd.sampleFrame(h);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) hd.sampleFrame(h, { temperature: 0.8, topK: 64, random: mulberry32(i) });
  return (performance.now() - t0) / n;
};
console.log(`audio head: depthformer 6 × 1024 on a ${D}-wide state, ms per frame (80 ms of audio)`);
console.log(`  plain-JS reference (1 thread): ${headTime(loadAudioHead(vocoder), 3).toFixed(1)} ms`);
for (const threads of threadList) for (const wt of ["F16", "Q8_0"] as const) {
  const hd = loadAudioHead(vocoder);
  hd.useEngine((await loadModel(Buffer.concat(hd.engineGguf(wt)), { threads, chunkSize: 1 })).forwardPass);
  console.log(`  engine ${wt}, threads ${threads}: ${headTime(hd, 20).toFixed(1)} ms`);
}

// what speak() adds per frame on top of the backbone step: the head's 8 codes, then the detokenizer's samples
console.log(`audio head (engine Q8_0, T 0.8, top-k 64) + detokenizer, ${frames} frames, backbone states given`);
for (const threads of threadList) {
  const hd = loadAudioHead(vocoder);
  hd.useEngine((await loadModel(Buffer.concat(hd.engineGguf("Q8_0")), { threads, chunkSize: 1 })).forwardPass);
  const m = await loadModel(detokPath, { threads, chunkSize: 8 });
  const d = new AudioDetokenizer(m.forwardPass, readCodeEmbeddings(vocoder).table);
  const states = Array.from({ length: frames }, (_, i) => randomTensor(mulberry32(50 + i), D, 1)), rand = mulberry32(3);
  d.decode(codes.slice(0, 16)); hd.sampleFrame(states[0]); // warm-up
  const s = d.stream(), t0 = performance.now();
  let first = 0;
  for (let f = 0; f < frames; f++) {
    const frame = hd.sampleFrame(states[f], { temperature: 0.8, topK: 64, random: rand });
    s.push(Array.from(frame, (c) => Math.min(c, 2047))); // an end-of-audio draw would end the utterance: keep timing frames
    if (f === 0) first = performance.now() - t0;
  }
  s.end();
  const ms = performance.now() - t0;
  s.dispose();
  console.log(`  threads ${threads}: ${(ms / frames).toFixed(1)} ms/frame, RTF ${(ms / 1000 / (frames * 0.08)).toFixed(3)}, first frame's PCM after ${first.toFixed(1)} ms`);
}

const textPath = join(dir, "text.gguf");
writeFileSync(textPath, Buffer.concat(syntheticGguf({ shape: { ...textShape, vocabSize: 65536 }, weightType: type })));
console.log(`speak(): text model ${textName}-shaped ${type}, ${speakFrames} frames (the backbone's step per frame included)`);
for (const threads of threadList) {
  const m = await loadModel(textPath, { threads, speechOut: { vocoder, detokenizer: detokPath } });
  await m.speak("Warm up.", { maxFrames: 1, system: "Warm-up." }); // JIT warm; another system turn, so nothing cached for the TTS one
  for (const [label, text] of [["cold prompt", "Hello, this is a benchmark of speech output."], ["system turn cached", "And here is a second sentence to speak."]]) {
    const t0 = performance.now();
    let first = 0, got = 0;
    const gen = m.speakStream(text, { maxFrames: speakFrames });
    for (let e = await gen.next(); !e.done; e = await gen.next()) {
      if (e.value.type === "audio" && e.value.pcm.length && !first) first = performance.now() - t0;
      if (e.value.type === "audio") got += e.value.pcm.length;
    }
    const ms = performance.now() - t0, pf = m.speech?.lastPrefill;
    const prefill = pf ? `, prompt ${pf.reused} cached + ${pf.computed} computed` : "";
    console.log(`  threads ${threads}, ${label}: first audio chunk ${first.toFixed(0)} ms, ${(got / 24000).toFixed(2)} s of audio in ` +
      `${ms.toFixed(0)} ms, RTF ${(ms / 1000 / (got / 24000)).toFixed(2)}${prefill}`);
  }
}
