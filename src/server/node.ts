// Node listener for the OpenAI handler: @hono/node-server turns Node's http requests into fetch Requests
// (aborting their signal when the client disconnects) and streams the Response bodies back.
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createOpenAIHandler, type OpenAIHandlerOptions, type ServableModel } from "./openai.js";

export interface ServeOptions extends OpenAIHandlerOptions {
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1: only this machine can connect unless asked otherwise. */
  host?: string;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export function serveOpenAI(model: ServableModel, opts: ServeOptions = {}): Promise<RunningServer> {
  const fetch = createOpenAIHandler(model, opts);
  const host = opts.host ?? "127.0.0.1";
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port: opts.port ?? 8080, hostname: host }, (info: AddressInfo) => {
      const h = host.includes(":") ? `[${host}]` : host;
      resolve({
        url: `http://${h}:${info.port}`, port: info.port,
        close: () => new Promise<void>((res, rej) => {
          server.close((e) => (e ? rej(e) : res()));
          (server as { closeAllConnections?: () => void }).closeAllConnections?.(); // open streams end now
        }),
      });
    });
    server.once("error", reject);
  });
}
