// The engine side of worker mode: runs loadModel and every proxied call on this (worker) thread and answers
// over a message port. Logits go back as transferred buffers; a stream's deltas go one message each.
import { Lfm2Error } from "../errors.js";
import { loadModel } from "../runtime/load.js";
import type { Model } from "../runtime/model.js";
import type { Session } from "../runtime/session.js";
import { STREAMING, type Reply, type Request, type WireError } from "./protocol.js";

export interface HostPort {
  post(m: Reply, transfer?: Transferable[]): void;
  onMessage(f: (m: Request) => void): void;
}

const MODEL_METHODS = new Set(["chat", "chatStream", "createSession", "dispose", "encode", "decode", "memoryBytes", "renderPrompt",
  "embed", "embedQuery", "embedDocuments", "encodeImage", "encodeAudio", "transcribe", "speak", "speakStream", "chatAudio", "chatAudioStream"]);
const SESSION_METHODS = new Set(["forward", "generate", "chat", "chatStream", "reset", "dispose"]);

function wireError(e: unknown): WireError {
  if (e instanceof Lfm2Error) return { name: e.name, code: e.code, message: e.message };
  return { name: (e as Error)?.name ?? "Error", message: (e as Error)?.message ?? String(e) };
}

/** Serve one model over `port`: the first request must be a load. */
export function serveEngine(port: HostPort): void {
  let model: Model | null = null;
  const sessions = new Map<number, Session>();
  const aborts = new Map<number, AbortController>();
  let nextSession = 1;

  const run = async (req: Exclude<Request, { type: "abort" }>, signal: AbortSignal): Promise<void> => {
    if (req.type === "load") {
      if (model) throw new Lfm2Error("BAD_INPUT", "this worker already holds a model");
      model = await loadModel(req.input as any, { ...req.opts, signal,
        onProgress: (progress) => port.post({ type: "progress", id: req.id, progress }) });
      const tok = model.tokenizer;
      const { metadata, ...info } = model.info;
      port.post({ type: "result", id: req.id, value: {
        info: { ...info, metadata }, chatTemplate: model.chatTemplate,
        tokenizer: tok && { vocabSize: tok.vocabSize, bosId: tok.bosId, eosId: tok.eosId, eotId: tok.eotId,
          padId: tok.padId, eogIds: [...tok.eogIds], addBos: tok.addBos, addEos: tok.addEos },
      } });
      return;
    }
    if (!model) throw new Lfm2Error("BAD_INPUT", "no model is loaded in this worker");
    const { target, method } = req;
    const args = [...req.args];
    const session = target === "model" ? null : sessions.get(target);
    if (target !== "model" && !session) throw new Lfm2Error("BAD_INPUT", `session ${target} was disposed`);
    if (!(session ? SESSION_METHODS : MODEL_METHODS).has(method)) throw new Lfm2Error("BAD_INPUT", `unknown method ${method}`);
    // the options argument (last for calls that take one) gets this call's signal
    const withSignal = (i: number) => { args[i] = { ...(args[i] as object ?? {}), signal }; };
    let value: unknown;
    const transfer: Transferable[] = [];
    if (!session) {
      const m = model;
      if (method === "createSession") {
        const id = nextSession++;
        sessions.set(id, m.createSession(args[0] as any));
        value = id;
      } else if (method === "encode" || method === "decode") {
        if (!m.tokenizer) throw new Lfm2Error("BAD_INPUT", "this model file carries no tokenizer");
        value = method === "encode" ? m.tokenizer.encode(args[0] as string, args[1] as any) : m.tokenizer.decode(args[0] as number[], args[1] as any);
      } else if (method === "memoryBytes") value = m.memoryBytes;
      else if (method === "dispose") { for (const s of sessions.values()) s.dispose(); sessions.clear(); m.dispose(); model = null; }
      else {
        withSignal(1);
        value = STREAMING.has(method) ? await stream(req.id, (m as any)[method](...args)) : await (m as any)[method](...args);
      }
    } else {
      if (method === "forward") {
        withSignal(1);
        const logits = await session.forward(args[0] as number[], args[1] as any);
        transfer.push(logits.buffer as ArrayBuffer); // forward returns a fresh copy: hand it over, no second copy
        value = logits;
      } else if (method === "dispose") { session.dispose(); sessions.delete(target as number); }
      else if (method === "reset") session.reset();
      else {
        withSignal(1);
        value = STREAMING.has(method) ? await stream(req.id, (session as any)[method](...args)) : await (session as any)[method](...args);
      }
    }
    const tokens = session && method !== "dispose" ? [...session.tokens] : undefined;
    port.post({ type: "result", id: req.id, value, tokens }, transfer);
  };

  const stream = async (id: number, it: AsyncGenerator<unknown, unknown>): Promise<unknown> => {
    for (let r = await it.next(); ; r = await it.next()) {
      if (r.done) return r.value;
      port.post({ type: "delta", id, value: r.value });
    }
  };

  port.onMessage((req) => {
    if (req.type === "abort") {
      aborts.get(req.id)?.abort(req.reason === undefined ? undefined : new Error(req.reason));
      return;
    }
    const ctrl = new AbortController();
    aborts.set(req.id, ctrl);
    run(req, ctrl.signal)
      .catch((e) => port.post({ type: "error", id: req.id, error: wireError(e) }))
      .finally(() => aborts.delete(req.id));
  });
}
