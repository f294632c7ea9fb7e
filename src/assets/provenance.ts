// Provenance stamped into every delivered image and rendition: an XMP packet with the
// prompt, model, provider, job id and the IPTC digital source type for AI-generated media,
// so a downstream tool can tell where a picture came from. PNG and JPEG get the packet
// spliced in without re-encoding (the pixels stay exactly as delivered).
import type { ImageFormat } from "./image-format.js";

export const DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";

export interface Provenance {
  prompt: string;
  model: string;
  provider: string;
  jobId: string | null;
  key: string;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

export function provenanceXmp(p: Provenance): string {
  return `<?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:imgbatch="https://imgbatch.dev/ns/1.0/"
    Iptc4xmpExt:DigitalSourceType="${DIGITAL_SOURCE_TYPE}"
    imgbatch:model="${escapeXml(p.model)}"
    imgbatch:provider="${escapeXml(p.provider)}"
    imgbatch:jobId="${escapeXml(p.jobId ?? "")}"
    imgbatch:key="${escapeXml(p.key)}">
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">${escapeXml(p.prompt)}</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>`;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** Splices an XMP packet into PNG (iTXt after IHDR) or JPEG (APP1 after SOI/APP0). */
export function embedXmp(image: Buffer, format: ImageFormat, xmp: string): Buffer {
  if (format === "png") {
    const ihdrEnd = 8 + 8 + image.readUInt32BE(8) + 4;
    // iTXt: keyword, NUL, compression flag, method, language tag NUL, translated keyword NUL, text
    const payload = Buffer.concat([Buffer.from("XML:com.adobe.xmp\0", "latin1"), Buffer.from([0, 0, 0, 0]), Buffer.from(xmp, "utf8")]);
    return Buffer.concat([image.subarray(0, ihdrEnd), pngChunk("iTXt", payload), image.subarray(ihdrEnd)]);
  }
  if (format === "jpeg") {
    const body = Buffer.concat([Buffer.from("http://ns.adobe.com/xap/1.0/\0", "latin1"), Buffer.from(xmp, "utf8")]);
    if (body.length + 2 > 0xffff) return image; // too long for one segment; leave the image as delivered
    const segment = Buffer.alloc(4);
    segment.writeUInt16BE(0xffe1, 0);
    segment.writeUInt16BE(body.length + 2, 2);
    let at = 2;
    // Keep JFIF's APP0 first, as readers expect.
    if (image[2] === 0xff && image[3] === 0xe0) at = 4 + image.readUInt16BE(4);
    return Buffer.concat([image.subarray(0, at), segment, body, image.subarray(at)]);
  }
  return image;
}

/** Reads the XMP packet back from PNG, JPEG or WebP bytes (no exiftool needed). */
export function readXmp(image: Buffer): string | null {
  const text = image.toString("latin1");
  const start = text.indexOf("<x:xmpmeta");
  if (start < 0) return null;
  const end = text.indexOf("</x:xmpmeta>", start);
  if (end < 0) return null;
  return Buffer.from(text.slice(start, end + "</x:xmpmeta>".length), "latin1").toString("utf8");
}

