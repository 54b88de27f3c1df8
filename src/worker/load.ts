// The package's loadModel: in-process by default, in a dedicated worker with { worker: true }.
import { loadModel as loadInProcess } from "../runtime/load.js";
import type { LoadOptions, Model, ModelInput } from "../runtime/model.js";
import { WorkerModel, type WorkerLoadOptions } from "./client.js";

/**
 * Load a model of the LFM2 family (see the runtime's loadModel). With `{ worker: true }` the engine runs in a
 * dedicated Worker / worker_thread and the result is a WorkerModel with the same methods, asynchronous throughout.
 */
// the in-process signature comes last: Parameters<> / ReturnType<> of loadModel read the last overload
export function loadModel(input: ModelInput, opts: WorkerLoadOptions): Promise<WorkerModel>;
export function loadModel(input: ModelInput, opts: LoadOptions & { worker: boolean; workerUrl?: string | URL }): Promise<Model | WorkerModel>;
export function loadModel(input: ModelInput, opts?: LoadOptions & { worker?: false }): Promise<Model>;
export function loadModel(input: ModelInput, opts: (LoadOptions & { worker?: boolean; workerUrl?: string | URL }) = {}): Promise<Model | WorkerModel> {
  if (opts.worker) return WorkerModel.load(input, opts as WorkerLoadOptions);
  return loadInProcess(input, opts);
}
