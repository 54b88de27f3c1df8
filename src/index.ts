export { loadModel, Model, type LoadOptions, type ModelInfo } from "./model/model.js";
export { Session, type SessionOptions } from "./session.js";
export { Lfm2Error, type Lfm2ErrorCode } from "./errors.js";
export type { Lfm2Config } from "./model/config.js";
export type { Progress, ProgressCallback, SourceInput, ByteSource } from "./io/source.js";
