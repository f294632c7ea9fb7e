// Apart from the driver, so that naming a database in a message loads no PostgreSQL code.

/** The connection string with its password replaced, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(a PostgreSQL URL)";
  }
}
