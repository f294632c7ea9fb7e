/** A database this imgbatch cannot use as it is: not a database, damaged, or of a newer version. */
export class DatabaseUnusableError extends Error {
  override name = "DatabaseUnusableError";
}
