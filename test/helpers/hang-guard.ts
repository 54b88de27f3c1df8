// Tests assert work, not speed (speed lives in `npm run bench`). Where only a clock can tell "it ends"
// from "it hangs" (or from accidental O(huge) work), this bound is used: 20–100× the typical time on a
// busy 2-core machine, so load cannot trip it but a hang or a runaway loop does.
export const HANG_GUARD_MS = 10_000;
