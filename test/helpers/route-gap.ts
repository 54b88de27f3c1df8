// MoE parity runs (test and bench): a session's forward that also reports moeFfn's smallest routing margin
// over the step — where it is ~0 the two engines may pick different experts, so a larger logit gap is expected.
import type { Model } from "../../src/runtime/model.js";
import type { Session } from "../../src/runtime/session.js";

export function forwardWithRouteGap(model: Model, s: Session) {
  const contexts = [...(model as any).fwd.cx.values()] as { minRouteGap: number }[];
  return async (tokens: number[]) => {
    for (const c of contexts) c.minRouteGap = Infinity;
    const out = await s.forward(tokens);
    return { out, gap: Math.min(...contexts.map((c) => c.minRouteGap)) };
  };
}
