// Mimi decoder benchmark (LFM2-Audio-1.5B speech out): real-time factor of decoding random codes with synthetic
// weights of the real shapes (moshi's _mimi_config decoder, F32), whole (in chunks of --chunk frames) and frame by
// frame as speak() streams it; wall and CPU seconds (CPU is steadier on a shared machine).
//   npx tsx bench/mimi.ts [--seconds 10] [--threads 1] [--chunk 16]
import { MimiDecoder } from "../src/models/lfm2audio/mimi.js";
import { syntheticMimiSafetensors } from "../src/models/lfm2audio/synthetic-mimi.js";
import { mulberry32 } from "../src/models/synthetic.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const seconds = Number(arg("seconds", "10")), threads = Number(arg("threads", "1")), chunk = Number(arg("chunk", "16"));

async function main(): Promise<void> {
  const weights = new Uint8Array(Buffer.concat(syntheticMimiSafetensors({ seed: 1 })));
  const mimi = await MimiDecoder.load(weights, { threads, maxChunkFrames: chunk });
  const frames = Math.round(seconds * 12.5), rand = mulberry32(3);
  const codes = Int32Array.from({ length: frames * 8 }, () => Math.floor(rand() * 2048));
  mimi.decode(codes.subarray(0, 80)); // warm-up (JIT, first touches of the weights)
  console.log(`Mimi decoder, ${frames} frames = ${seconds} s of audio, ${mimi.threads} thread(s), chunk ${chunk}`);
  for (const mode of ["whole", "frame by frame"]) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    if (mode === "whole") mimi.decode(codes);
    else {
      const s = mimi.stream();
      for (let f = 0; f < frames; f++) s.push(codes.subarray(f * 8, f * 8 + 8));
      s.dispose();
    }
    const wall = (performance.now() - t0) / 1000, cu = process.cpuUsage(c0), cpu = (cu.user + cu.system) / 1e6;
    console.log(`${mode}: wall ${wall.toFixed(2)} s (RTF ${(wall / seconds).toFixed(3)}), ` +
      `main-thread CPU ${cpu.toFixed(2)} s (RTF ${(cpu / seconds).toFixed(3)})`);
  }
  mimi.dispose();
}

main();
