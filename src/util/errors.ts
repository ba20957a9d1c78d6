// UserError: an expected failure the user can fix (a bad flag, a missing or unreadable file, a run
// folder in the way). The CLI prints its message as one line and exits 2, with no stack trace unless
// KILN_DEBUG is set; any other error is a bug and keeps its stack. Subclasses name the area
// (ConfigError, RunFolderError, CheckpointError, DataFileError).

export class UserError extends Error {
  override name = "UserError";
}

/** One line for an fs error code (ENOENT, EACCES, ...), for messages that name the path themselves. */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file or directory";
    case "ENOTDIR":
      return "a component of the path is a file, not a directory";
    case "EISDIR":
      return "is a directory";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "read-only file system";
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "disk quota exceeded";
    default:
      return (e as Error)?.message ?? String(e);
  }
}

/** True for the fs errors a user causes and can fix (as opposed to bugs). */
export function isUserFsError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return ["ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT"].includes(code ?? "");
}

// Errors the library throws about what the caller passed (a file, an option, a data row) carry an area
// tag as their first word; the CLI reports them as one line with exit 2, like a UserError.
const INPUT_TAGS = /^(\[(config|pretrained|generate|tokenizer|chat_template|bpe_train|peft|lora|sft|dpo|finetune|pipeline)\]|safetensors:) /;

/** True for a UserError or a library error about the caller's input (see INPUT_TAGS): exit 2, not a bug. */
export function isInputError(e: unknown): boolean {
  return e instanceof UserError || (e instanceof Error && INPUT_TAGS.test(e.message));
}
