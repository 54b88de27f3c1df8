// Minimal safetensors writer for tests and the synthetic-model tooling.
export interface SafetensorsWriteTensor { name: string; dtype: "F32" | "F16" | "BF16"; shape: number[]; data: Uint8Array }

export function encodeSafetensors(tensors: SafetensorsWriteTensor[], metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) { header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] }; off += t.data.length; }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8); // data starts 8-aligned
  const head = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(head.length), true);
  return [len, head, ...tensors.map((t) => t.data)];
}
