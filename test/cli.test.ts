// The `lfm2` command as a user runs it: `node dist/cli.js …` in a child process, with piped stdin and signals.
// Uses the built-in demo model (no download); dist/ is rebuilt first (a no-op when src/ is unchanged).
import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = "dist/cli.js";
const HANG_MS = 50_000;

beforeAll(() => {
  execFileSync(process.execPath, ["scripts/build-js.mjs"], { cwd: ROOT, stdio: "pipe" });
}, 180_000);

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Starts the CLI; `done` resolves when it exits (rejects if it is still running after HANG_MS). */
function start(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] }) as ChildProcessWithoutNullStreams;
  const io = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => { io.stdout += d; });
  child.stderr.setEncoding("utf8").on("data", (d: string) => { io.stderr += d; });
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`lfm2 ${args.join(" ")} hung:\n${io.stderr}`)); }, HANG_MS);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      // let the pipes drain before reporting
      setImmediate(() => resolve({ code, signal, ...io }));
    });
  });
  /** Resolves once `test` holds for the output so far. */
  const until = (test: () => boolean) => new Promise<void>((resolve) => {
    const check = () => { if (test()) { child.stdout.off("data", check); child.stderr.off("data", check); resolve(); } };
    child.stdout.on("data", check);
    child.stderr.on("data", check);
    check();
  });
  return { child, io, done, until };
}

async function cli(args: string[], stdin = ""): Promise<Run> {
  const p = start(args);
  p.child.stdin.end(stdin);
  return p.done;
}

const statsLines = (stderr: string) => stderr.split("\n").filter((l) => /^(> )*\[\d+ cached \+ \d+ new prompt tokens/.test(l));
const count = (s: string, sub: string) => s.split(sub).length - 1;

describe("lfm2 chat", () => {
  it("answers every piped line in order and exits 0 at end of input", async () => {
    const r = await cli(["chat", "-n", "4", "--seed", "1"], "hi\nsecond\n\nthird");
    expect(r.code, r.stderr).toBe(0);
    const stats = statsLines(r.stderr);
    expect(stats).toHaveLength(3); // the blank line is skipped, the last line needs no newline
    // each turn builds on the previous ones: the cache grows turn by turn
    const cached = stats.map((l) => Number(/\[(\d+) cached/.exec(l)![1]));
    expect(cached[0]).toBe(0);
    expect(cached[1]).toBeGreaterThan(cached[0]!);
    expect(cached[2]).toBeGreaterThan(cached[1]!);
    expect(r.stdout.split("\n").length).toBeGreaterThanOrEqual(4); // three replies, each ends its line
  });

  it("Ctrl-C stops the current reply and returns to the prompt; Ctrl-C at an empty prompt exits", async () => {
    // greedy with a long budget: these replies run ~1,000 and ~700 tokens, far past the signal
    const p = start(["chat", "-n", "3000", "--temp", "0"]);
    p.child.stdin.write("tell me a long story\n");
    await p.until(() => p.io.stdout.length > 0);
    p.child.kill("SIGINT");
    await p.until(() => count(p.io.stderr, "[stopped]") === 1);
    const before = p.io.stdout.length;
    p.child.stdin.write("and another one\n"); // the chat is still there and answers the next line
    await p.until(() => p.io.stdout.length > before);
    p.child.kill("SIGINT");
    await p.until(() => count(p.io.stderr, "[stopped]") === 2 && p.io.stderr.trimEnd().endsWith(">"));
    p.child.kill("SIGINT"); // at the prompt, with stdin still open
    const r = await p.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.signal).toBeNull();
    expect(statsLines(r.stderr)).toHaveLength(0); // neither reply ran to its end
  });
});

describe("lfm2 run", () => {
  it("takes the prompt from positional words", async () => {
    const r = await cli(["run", "Hello", "there", "-n", "2"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith("Hello there")).toBe(true);
  });

  it("Ctrl-C stops the generation with exit code 130", async () => {
    const p = start(["run", "-p", "Once upon a time", "-n", "3000"]); // greedy: ~1,500 tokens before an end token
    p.child.stdin.end();
    await p.until(() => p.io.stdout.length > "Once upon a time".length);
    p.child.kill("SIGINT");
    const r = await p.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain("[stopped]");
  });
});

describe("lfm2 usage errors: exit code 2 before any model is loaded, nothing on stdout", () => {
  const cases: [string[], RegExp][] = [
    [["run", "Hi", "-p", "Hi"], /either as -p\/--prompt or as positional words/],
    [["run", "--bogus"], /Unknown option '--bogus'/],
    [["run", "-p", "Hi", "-n", "abc"], /--tokens must be an integer ≥ 1, got "abc"/],
    [["run", "-p", "Hi", "-n", "0"], /--tokens must be ≥ 1, got 0/],
    [["run", "-p", "Hi", "-n", "2.5"], /--tokens must be an integer/],
    [["run", "-p", "Hi", "--temp", "x"], /--temp must be a number ≥ 0, got "x"/],
    [["run", "-p", "Hi", "--temp", ""], /--temp must be a number/],
    [["run", "-p", "Hi", "--top-p", "2"], /--top-p must be in \(0, 1\], got 2/],
    [["run", "-p", "Hi", "--threads", "0x4"], /--threads must be an integer/],
    [["run", "-m", "a.gguf", "--hf", "x/y"], /-m\/--model or --hf, not both/],
    [["chat", "extra"], /unexpected argument "extra"/],
    [["chat", "--prompt-tokens", "5"], /Unknown option '--prompt-tokens'/],
    [["inspect", "-n", "5"], /Unknown option '-n'/],
    [["bench", "--gen-tokens", "-3"], /--gen-tokens/],
    [["frob"], /unknown command "frob"/],
  ];
  it.each(cases)("lfm2 %j", async (args, message) => {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/no model given/); // validated before loading
    expect(r.stdout).toBe(""); // in particular the prompt is not echoed
  });

  it("--help still works for every command", async () => {
    for (const c of ["run", "chat", "inspect", "bench"]) {
      const r = await cli([c, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`lfm2 ${c}`);
    }
  });
});
