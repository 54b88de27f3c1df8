// Speech-in benchmark: real-time factor (encode time / audio duration) of the LFM2-Audio front end +
// encoder + adapter, on a synthetic mmproj of the published encoder's size (17 layers × 512, FF 2048,
// 256 subsampling channels, adapter → 2048), one and all threads; per-stage times; beside it llama.cpp's
// libmtmd encoder (clip_image_batch_encode, mel excluded) on the same file when the tool builds.
//   npx tsx bench/audio-encode.ts [--seconds 10] [--type F16] [--threads 1,2] [--reps 3] [--no-native]
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { buildMtmdAudioDump } from "../scripts/build-llama-tools.mjs";
import { AudioEncoder } from "../src/models/lfm2audio/encoder.js";
import { syntheticAudioMmproj } from "../src/models/lfm2audio/synthetic.js";
import { logMelSpectrogram } from "../src/audio/mel.js";
import { mulberry32 } from "../src/models/synthetic.js";
import type { GgmlTypeName } from "../src/core/quant-types.js";

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
const seconds = Number(arg("seconds", "10"));
const type = arg("type", "F16") as GgmlTypeName;
const threadList = arg("threads", `1,${availableParallelism()}`).split(",").map(Number).filter((t, i, a) => a.indexOf(t) === i);
const reps = Number(arg("reps", "3"));

// speech-like test signal: noise bursts shaped by a syllable-rate envelope plus a pitch tone
const r = mulberry32(3), n = Math.round(16000 * seconds), x = new Float32Array(n);
for (let i = 0; i < n; i++) {
  const t = i / 16000, env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 4 * t);
  x[i] = env * (0.1 * (r() - 0.5) + 0.2 * Math.sin(2 * Math.PI * 140 * t));
}
const bytes = syntheticAudioMmproj({ weightType: type, seed: 1 });
console.log(`audio ${seconds} s, mmproj ${type} ${(bytes.length / 1e6).toFixed(1)} MB (17 layers × 512, synthetic)`);
for (const threads of threadList) {
  const enc = await AudioEncoder.load(bytes, { threads });
  enc.encode({ samples: x, sampleRate: 16000 }); // warm-up
  let best = Infinity, bestMel = Infinity;
  const stages: Record<string, number> = {};
  for (let k = 0; k < reps; k++) {
    const t0 = performance.now();
    const mel = logMelSpectrogram(x);
    const t1 = performance.now();
    const prof: Record<string, number> = {};
    const out = enc.encodeMel(mel, prof);
    const t2 = performance.now();
    if (t2 - t0 < best) { best = t2 - t0; bestMel = t1 - t0; Object.assign(stages, prof); }
    if (k === 0) console.log(`  ${out.tokens} embedding rows of ${out.embeddings.length / out.tokens}`);
  }
  const stageText = Object.entries(stages).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ");
  console.log(`threads ${enc.threads}: encode ${best.toFixed(0)} ms → RTF ${(best / 1000 / seconds).toFixed(3)} ` +
    `(${(seconds * 1000 / best).toFixed(1)}× real time); mel ${bestMel.toFixed(0)} ms; stages ms: ${stageText}`);
  enc.dispose();
}

if (!process.argv.includes("--no-native")) {
  try {
    const tool = await buildMtmdAudioDump({ quiet: true });
    const dir = join(process.cwd(), ".cache", "bench");
    mkdirSync(dir, { recursive: true });
    const mm = join(dir, `audio-mmproj-${type}.gguf`), pcm = join(dir, "audio-bench.f32");
    writeFileSync(mm, bytes);
    writeFileSync(pcm, new Uint8Array(x.buffer));
    for (const threads of threadList) {
      let best = Infinity;
      for (let k = 0; k < reps; k++) {
        const log = spawnSync(tool, [mm, pcm, join(dir, "audio-bench-out"), String(threads)], { encoding: "utf8" }).stderr;
        const m = /encode_ms ([\d.]+)/.exec(log);
        if (m) best = Math.min(best, Number(m[1]));
      }
      console.log(`llama.cpp mtmd, threads ${threads}: encode ${best.toFixed(0)} ms → RTF ${(best / 1000 / seconds).toFixed(3)} (mel excluded)`);
    }
  } catch (e) {
    console.log(`llama.cpp mtmd: not run (${(e as Error).message.split("\n")[0]})`);
  }
}

