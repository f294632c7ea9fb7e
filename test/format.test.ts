// Credits and times as people read them: one rule for status, the progress line and the sheet.
import { afterEach, describe, expect, it } from "vitest";
import { formatCredits, formatLocalTime, roundCredits } from "../src/report/format.js";

describe("credits", () => {
  const thirteenFlux = Array.from({ length: 13 }, () => 0.6).reduce((a, b) => a + b, 0);

  it.each([
    [thirteenFlux, 7.8, "7.8"],
    [0.6 * 3, 1.8, "1.8"],
    [2 + 14 + 0.6, 16.6, "16.6"],
    [0, 0, "0"],
    [1234.5, 1234.5, "1,234.5"],
    [0.125, 0.13, "0.13"],
  ])("%d rounds to %d and reads %s", (credits, rounded, text) => {
    expect(roundCredits(credits)).toBe(rounded);
    expect(formatCredits(credits)).toBe(text);
  });

  it("the float noise this rounds away is real", () => expect(String(thirteenFlux)).toBe("7.799999999999998"));
});

describe("formatLocalTime", () => {
  const tzBefore = process.env.TZ;
  afterEach(() => {
    if (tzBefore === undefined) delete process.env.TZ;
    else process.env.TZ = tzBefore;
  });

  it.each([
    ["UTC", "2026-12-07 03:36 +00:00"],
    ["Asia/Kolkata", "2026-12-07 09:06 +05:30"],
    ["America/St_Johns", "2026-12-07 00:06 -03:30"],
    ["America/Los_Angeles", "2026-12-06 19:36 -08:00"],
  ])("in %s reads %s", (zone, text) => {
    process.env.TZ = zone;
    expect(formatLocalTime(Date.parse("2026-12-07T03:36:59.900Z"))).toBe(text);
    expect(formatLocalTime(new Date("2026-12-07T03:36:59.900Z"))).toBe(text);
  });

  it("takes the offset of the moment, not of today (summer time)", () => {
    process.env.TZ = "Europe/Berlin";
    expect(formatLocalTime(Date.parse("2026-07-01T12:00:00Z"))).toBe("2026-07-01 14:00 +02:00");
    expect(formatLocalTime(Date.parse("2026-01-01T12:00:00Z"))).toBe("2026-01-01 13:00 +01:00");
  });
});
