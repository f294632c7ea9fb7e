// `{{name}}` placeholders in prompts. Values are inserted as they are, never expanded
// again, so a variable cannot smuggle in another placeholder.

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

export interface ParsedTemplate {
  /** Placeholder names in order of first use. */
  names: string[];
  /** What is wrong with the template's syntax, if anything. */
  problems: string[];
}

export function parseTemplate(template: string): ParsedTemplate {
  const names: string[] = [];
  const problems: string[] = [];
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? "";
    if (name === "") problems.push(`${JSON.stringify(match[0])} is an empty placeholder; write {{name}}`);
    else if (!names.includes(name)) names.push(name);
  }
  const rest = template.replace(PLACEHOLDER, "");
  if (rest.includes("{{") || rest.includes("}}")) {
    problems.push(`has an unmatched "{{" or "}}"; placeholders are written {{name}}`);
  }
  return { names, problems };
}

/** Fills every placeholder `lookup` knows; the names it does not know are returned. */
export function fillTemplate(template: string, lookup: (name: string) => string | undefined): { text: string; missing: string[] } {
  const missing: string[] = [];
  const text = template.replace(PLACEHOLDER, (whole, rawName: string) => {
    const value = lookup(rawName);
    if (value !== undefined) return value;
    if (rawName !== "" && !missing.includes(rawName)) missing.push(rawName);
    return whole;
  });
  return { text, missing };
}
