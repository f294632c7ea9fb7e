// A manifest's bytes → UTF-8 bytes. Spreadsheets save text three ways: UTF-8 (with or
// without a byte-order mark), and "Unicode text", which is UTF-16 LE with a byte-order mark.
// UTF-16 is decoded here, so that a UTF-16 file reads exactly like its UTF-8 twin.
import { isUtf8 } from "node:buffer";

export type Utf8Bytes = { utf8: Buffer } | { refused: { line: number; message: string } };

type Utf16 = "utf-16le" | "utf-16be";

const NOT_UTF8 = 'is not valid UTF-8; save the file as UTF-8 (in Excel: "CSV UTF-8")';
const NOT_UTF8_BUT_UTF16 = 'is not valid UTF-8 (it looks like UTF-16 without a byte-order mark); save the file as UTF-8 (in Excel: "CSV UTF-8")';
const NOT_UTF16 = 'is not valid UTF-16; save the file as UTF-8 (in Excel: "CSV UTF-8")';

/** Byte pairs looked at to tell UTF-16 without a byte-order mark. */
const SNIFF_PAIRS = 64;

/**
 * UTF-8 (a byte-order mark is kept: each format's reader drops it), or UTF-16 with a
 * byte-order mark, or UTF-16 without one, told by its NUL bytes (below), re-encoded as UTF-8.
 * Anything else is refused, naming the first line that is not UTF-8 (for UTF-16 without a
 * byte-order mark, lines are counted by their "\n" byte: still the right line).
 */
export function manifestUtf8(bytes: Buffer): Utf8Bytes {
  const utf16 = utf16Of(bytes);
  if (utf16 !== null) return decodeUtf16(bytes.subarray(utf16.bomBytes), utf16.encoding);
  if (isUtf8(bytes)) return { utf8: bytes };
  // NUL bytes: UTF-16 whose text is too far from ASCII to be told without its byte-order mark.
  return { refused: { line: firstNonUtf8Line(bytes), message: bytes.includes(0) ? NOT_UTF8_BUT_UTF16 : NOT_UTF8 } };
}

function utf16Of(bytes: Buffer): { encoding: Utf16; bomBytes: number } | null {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: "utf-16le", bomBytes: 2 };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { encoding: "utf-16be", bomBytes: 2 };
  // Without a byte-order mark: a header is mostly ASCII, so in UTF-16 every other byte is
  // NUL. NUL bytes on one side only (at least half of the first pairs) and none on the other
  // side is UTF-16; text that is UTF-8 has no NUL bytes at all.
  const pairs = Math.min(SNIFF_PAIRS, Math.floor(bytes.length / 2));
  if (pairs < 2) return null;
  let evenNuls = 0;
  let oddNuls = 0;
  for (let pair = 0; pair < pairs; pair++) {
    if (bytes[2 * pair] === 0) evenNuls++;
    if (bytes[2 * pair + 1] === 0) oddNuls++;
  }
  if (evenNuls === 0 && oddNuls * 2 >= pairs) return { encoding: "utf-16le", bomBytes: 0 };
  if (oddNuls === 0 && evenNuls * 2 >= pairs) return { encoding: "utf-16be", bomBytes: 0 };
  return null;
}

function decodeUtf16(bytes: Buffer, encoding: Utf16): Utf8Bytes {
  try {
    return { utf8: Buffer.from(new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(bytes), "utf8") };
  } catch {
    // An odd byte count or a lone surrogate: the line of the first character that is not UTF-16.
    const text = new TextDecoder(encoding, { ignoreBOM: true }).decode(bytes);
    const bad = text.indexOf("\uFFFD");
    return { refused: { line: linesIn(text.slice(0, bad === -1 ? text.length : bad)) + 1, message: NOT_UTF16 } };
  }
}

function linesIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) count++;
  return count;
}

/** 1-based line of the first byte sequence that is not UTF-8. */
function firstNonUtf8Line(bytes: Buffer): number {
  let line = 1;
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    if (!isUtf8(bytes.subarray(start, end))) return line;
    line += 1;
    start = end + 1;
  }
  return line;
}
