// Stop strings over streamed text: text is released as soon as it cannot be the start of a stop
// string; a partial match at the end of the buffer is held back until it is decided.
import { Lfm2Error } from "../errors.js";

export interface StopPushResult {
  /** Text safe to emit now (never includes any part of a matched stop string). */
  text: string;
  /** A stop string was found (now or earlier); nothing more will be emitted. */
  stopped: boolean;
  /** The stop string that matched, once stopped. */
  stopString?: string;
}

export class StopStringMatcher {
  private readonly stops: string[];
  private readonly maxLen: number;
  private held = "";
  private matched: string | undefined;

  constructor(stopStrings: readonly string[]) {
    if (!Array.isArray(stopStrings)) throw new Lfm2Error("BAD_INPUT", "stop strings must be an array");
    for (const s of stopStrings) {
      if (typeof s !== "string" || s.length === 0) throw new Lfm2Error("BAD_INPUT", "stop strings must be non-empty strings");
    }
    this.stops = [...new Set(stopStrings)];
    this.maxLen = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  get stopped(): boolean {
    return this.matched !== undefined;
  }

  /** The stop string that ended the stream, if any. */
  get stopString(): string | undefined {
    return this.matched;
  }

  /** Text currently held back as a possible stop-string prefix. */
  get pending(): string {
    return this.held;
  }

  push(text: string): StopPushResult {
    if (this.matched !== undefined) return { text: "", stopped: true, stopString: this.matched };
    const buf = this.held + text;
    if (this.stops.length === 0) {
      this.held = "";
      return { text: buf, stopped: false };
    }
    // Earliest match wins; among matches at the same position, the longest. Only positions a new
    // match can start at need searching: the held text never contains a whole stop string.
    let at = -1;
    let which = "";
    for (const s of this.stops) {
      const k = buf.indexOf(s);
      if (k >= 0 && (at < 0 || k < at || (k === at && s.length > which.length))) { at = k; which = s; }
    }
    if (at >= 0) {
      this.matched = which;
      this.held = "";
      return { text: buf.slice(0, at), stopped: true, stopString: which };
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    let hold = 0;
    for (let n = Math.min(buf.length, this.maxLen - 1); n > 0 && hold === 0; n--) {
      const tail = buf.slice(buf.length - n);
      for (const s of this.stops) {
        if (s.length > n && s.startsWith(tail)) { hold = n; break; }
      }
    }
    this.held = buf.slice(buf.length - hold);
    return { text: buf.slice(0, buf.length - hold), stopped: false };
  }

  /** End of stream without a stop: release whatever is held back. */
  flush(): string {
    const t = this.matched === undefined ? this.held : "";
    this.held = "";
    return t;
  }
}
