/** Every failure the runtime reports is an Lfm2Error with a stable `code`. */
export type Lfm2ErrorCode =
  | "BAD_MAGIC"          // not a GGUF / safetensors file
  | "UNSUPPORTED_VERSION"
  | "TRUNCATED"          // file ends before a header field or tensor data
  | "OUT_OF_RANGE"       // an offset, count or size points outside the file / sane limits
  | "BAD_METADATA"       // a metadata value has the wrong type or is missing
  | "UNSUPPORTED_ARCH"
  | "UNSUPPORTED_TYPE"   // tensor type this runtime cannot compute with
  | "SHAPE_MISMATCH"     // tensor shape disagrees with the config
  | "MISSING_TENSOR"
  | "MODEL_TOO_LARGE"    // does not fit the WebAssembly memory limit
  | "CONTEXT_OVERFLOW"
  | "ABORTED"
  | "BAD_INPUT"          // invalid argument from the caller
  | "BAD_AUDIO"          // audio bytes or samples that cannot be decoded (format, rate, length)
  | "BAD_TEMPLATE"       // a chat template exceeded its work limits (loop, range, output size, recursion, time)
  | "IO";                // the source could not be read

export class Lfm2Error extends Error {
  readonly code: Lfm2ErrorCode;
  constructor(code: Lfm2ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "Lfm2Error";
    this.code = code;
  }
}

export function abortError(signal?: AbortSignal): Lfm2Error {
  const reason = signal?.reason;
  return new Lfm2Error("ABORTED", reason instanceof Error ? reason.message : "operation aborted", { cause: reason });
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}
