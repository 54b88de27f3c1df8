// GPT-2 byte-level BPE alphabet: every byte maps to a printable unicode character ("Ġ" = space, "Ċ" = \n).
export const BYTE_TO_CHAR: string[] = (() => {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return out;
})();

export const CHAR_TO_BYTE: Map<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const utf8 = new TextEncoder();
export function bytesToUnicode(text: string): string {
  let s = "";
  for (const b of utf8.encode(text)) s += BYTE_TO_CHAR[b];
  return s;
}
