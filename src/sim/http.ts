// Response helpers and the canned bodies of the layers in front of the service
// (API Gateway JSON, Cloudflare and load-balancer HTML, CloudFront XML).
import type { IncomingMessage, ServerResponse } from "node:http";

export const MAX_BODY_BYTES = 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** Drops the connection without any response, as a reset or a crashed proxy would. */
export function dropConnection(req: IncomingMessage, res: ServerResponse): void {
  res.socket?.destroy();
  req.socket.destroy();
}

export class BodyTooLargeError extends Error {}

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLargeError("request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export const CLOUDFLARE_1010_HTML = `<!DOCTYPE html>
<html lang="en-US"><head><title>Access denied | api.pictory.ai used Cloudflare to restrict access</title></head>
<body><div id="cf-wrapper"><div id="cf-error-details">
<h1><span class="cf-error-type">Error</span> <span class="cf-error-code">1010</span></h1>
<h2 class="cf-subheadline">The owner of this website (api.pictory.ai) has banned your access based on your browser's signature.</h2>
<p>Cloudflare Ray ID: <strong>0000000000000000</strong> (imgbatch simulator)</p>
</div></div></body></html>
`;

export const BAD_GATEWAY_HTML = `<html>
<head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center></body>
</html>
`;

export const SERVICE_UNAVAILABLE_TEXT = "Service Unavailable\n";

export function cloudFrontDenied(message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${message}</Message></Error>`;
}
