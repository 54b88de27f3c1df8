// The architecture registry: arch name → { config from GGUF / HF, tensor list, binding }. Every
// architecture here runs on the LFM2 trunk's forward pass (src/models/lfm2/forward.ts).
import { Lfm2Error } from "../errors.js";
import { metaString, type GgufValue } from "../formats/gguf.js";
import type { PlacedTensors, TensorSpec } from "../core/tensor-spec.js";
import { configFromGguf as lfm2ConfigFromGguf, configFromHf as lfm2ConfigFromHf, type Lfm2Config } from "./lfm2/config.js";
import { bindLfm2, lfm2Tensors } from "./lfm2/tensors.js";
import type { Lfm2Weights } from "./lfm2/forward.js";
import { bindLfm2moe, lfm2moeTensors, moeConfigFromGguf, moeConfigFromHf } from "./lfm2moe/model.js";

export interface Architecture {
  /** general.architecture in GGUF. */
  name: string;
  /** HF config.json model_type / architectures[0] values. */
  hfNames: string[];
  configFromGguf(meta: Map<string, GgufValue>): Lfm2Config;
  configFromHf?(json: Record<string, any>): Lfm2Config;
  tensors(c: Lfm2Config): TensorSpec[];
  bind(c: Lfm2Config, t: PlacedTensors): Lfm2Weights;
}

export const ARCHITECTURES: Record<string, Architecture> = {
  lfm2: { name: "lfm2", hfNames: ["lfm2", "Lfm2ForCausalLM"], configFromGguf: (m) => lfm2ConfigFromGguf(m, "lfm2"),
    configFromHf: lfm2ConfigFromHf, tensors: (c) => lfm2Tensors(c), bind: (c, t) => bindLfm2(c, t) },
  lfm2moe: { name: "lfm2moe", hfNames: ["lfm2_moe", "Lfm2MoeForCausalLM"], configFromGguf: moeConfigFromGguf,
    configFromHf: moeConfigFromHf, tensors: lfm2moeTensors, bind: bindLfm2moe },
};

const supported = () => Object.keys(ARCHITECTURES).map((a) => `"${a}"`).join(" or ");

export function architecture(name: string | undefined): Architecture {
  const a = name === undefined ? undefined : ARCHITECTURES[name];
  if (!a) throw new Lfm2Error("UNSUPPORTED_ARCH", `architecture "${name ?? "(none)"}" is not supported by this runtime (expected ${supported()})`);
  return a;
}

/** The configuration of a GGUF file, read by its architecture's module. */
export function configFromGguf(meta: Map<string, GgufValue>): Lfm2Config {
  return architecture(metaString(meta, "general.architecture")).configFromGguf(meta);
}

/** The configuration of a Hugging Face config.json (model_type, else architectures[0]). */
export function configFromHf(json: Record<string, any>): Lfm2Config {
  const names = [json.model_type, ...(Array.isArray(json.architectures) ? json.architectures : [])];
  const arch = Object.values(ARCHITECTURES).find((a) => a.configFromHf && names.some((n) => a.hfNames.includes(n)));
  if (!arch) throw new Lfm2Error("UNSUPPORTED_ARCH", `model_type "${json.model_type}" is not supported by this runtime (expected ${supported()})`);
  return arch.configFromHf!(json);
}
