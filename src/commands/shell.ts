// Commands in hints are printed as the user would type them: a word the shell would split or
// expand is single-quoted.

export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
