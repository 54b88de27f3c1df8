// Messages between a WorkerModel (caller's thread) and the engine host (its worker). Every request carries an
// id; the host answers with deltas (streams), progress (loads) and one result or error per id.
import type { Lfm2ErrorCode } from "../errors.js";

/** What a method is called on: the model, or a session by its id. */
export type Target = "model" | number;

export type Request =
  | { type: "load"; id: number; input: unknown; opts: Record<string, unknown> }
  | { type: "call"; id: number; target: Target; method: string; args: unknown[] }
  | { type: "abort"; id: number; reason?: string };

export interface WireError { name: string; code?: Lfm2ErrorCode; message: string }

export type Reply =
  | { type: "progress"; id: number; progress: unknown }
  | { type: "delta"; id: number; value: unknown }
  /** `tokens`: the session's cached tokens after a session call, mirrored by the proxy's getters. */
  | { type: "result"; id: number; value: unknown; tokens?: number[] }
  | { type: "error"; id: number; error: WireError };

/** Calls whose answer is a stream of deltas and a final value. */
export const STREAMING = new Set(["chatStream", "generate", "speakStream", "chatAudioStream"]);
