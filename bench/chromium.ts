// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, with a fresh profile per
// launch. Shared by the wllama rival runner, our own in-browser benchmark, and browser tests.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Flags: headless, no sandbox (root in a container), no GPU, and nothing that talks to the network. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-domain-reliability",
  "--disable-client-side-phishing-detection",
  "--metrics-recording-only",
  "--no-default-browser-check",
  "--disable-dev-shm-usage",
];

export interface LaunchOptions {
  /** Extra command-line flags (appended to CHROMIUM_ARGS). */
  args?: string[];
  /** Default true. */
  headless?: boolean;
  /** Forward page console messages and page errors here (default: nowhere). */
  onConsole?: (line: string) => void;
  /** Called for every request to a non-local host, which is aborted (default: a warning on stderr). */
  onBlockedRequest?: (url: string) => void;
  /** Default timeout for Playwright actions/navigation in ms (default 60 s). Does not bound page.evaluate. */
  timeoutMs?: number;
}

export interface ChromiumHandle {
  context: BrowserContext;
  userDataDir: string;
  /** A new page with console forwarding set up. */
  newPage(): Promise<Page>;
  /** Close the browser and delete its profile directory. */
  close(): Promise<void>;
}

export async function launchChromium(opts: LaunchOptions = {}): Promise<ChromiumHandle> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} not found: install Debian's chromium (apt-get update && apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  const userDataDir = await mkdtemp(join(tmpdir(), "lfm2-chromium-"));
  let context: BrowserContext;
  try {
    // A persistent context is the only way to give Playwright an explicit (fresh) --user-data-dir.
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: opts.headless ?? true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
      timeout: 120_000,
      viewport: { width: 1024, height: 768 },
    });
  } catch (e) {
    await rm(userDataDir, { recursive: true, force: true });
    throw e;
  }
  context.setDefaultTimeout(opts.timeoutMs ?? 60_000);
  // Block anything that is not localhost, so a page can never reach a CDN by accident.
  const nonLocal = (u: URL) => /^(https?|wss?):$/.test(u.protocol) && !["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
  await context.route(nonLocal, (route) => {
    const url = route.request().url();
    if (opts.onBlockedRequest) opts.onBlockedRequest(url);
    else console.warn(`[chromium] blocked non-local request: ${url}`);
    return route.abort("blockedbyclient");
  });
  const attach = (page: Page) => {
    if (!opts.onConsole) return;
    const out = opts.onConsole;
    page.on("console", (m: ConsoleMessage) => out(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => out(`[pageerror] ${e.message}`));
    page.on("crash", () => out("[crash] page crashed"));
  };
  for (const p of context.pages()) attach(p);
  context.on("page", attach);
  let closed = false;
  return {
    context,
    userDataDir,
    newPage: () => context.newPage(),
    close: async () => {
      if (closed) return;
      closed = true;
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/** Launch a fresh Chromium, open `url`, run `fn(page)`, then always close the browser and its profile. */
export async function withPage<T>(url: string, fn: (page: Page) => Promise<T>, opts: LaunchOptions = {}): Promise<T> {
  const browser = await launchChromium(opts);
  try {
    const page = (browser.context.pages()[0] as Page | undefined) ?? (await browser.newPage());
    await page.goto(url, { waitUntil: "load" });
    return await fn(page);
  } finally {
    await browser.close();
  }
}

/** Reject after `ms` (for long page.evaluate calls, which Playwright does not time out by itself). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, fail) => { timer = setTimeout(() => fail(new Error(`${what} timed out after ${(ms / 1000).toFixed(0)} s`)), ms); }),
  ]);
}
