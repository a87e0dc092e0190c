//! The `.proto` comments of services and methods, written as doc comments
//! on the generated items.

use prost_build::Comments;

/// `comments` as doc comments at `indent` levels in, followed by a blank
/// doc line when there are any (so the generated text after them reads as
/// a new paragraph).
pub(crate) fn write_intro(comments: &Comments, indent: u8, buf: &mut String) {
    write_comments(comments, indent, buf);
    if has_comments(comments) {
        buf.push_str(&"    ".repeat(indent as usize));
        buf.push_str("///\n");
    }
}

/// `comments` as doc comments at `indent` levels in.
pub(crate) fn write_comments(comments: &Comments, indent: u8, buf: &mut String) {
    // Detached comments are not about this item; prost drops them on
    // messages' fields too.
    let only_attached = Comments {
        leading_detached: Vec::new(),
        leading: comments.leading.clone(),
        trailing: comments.trailing.clone(),
    };
    only_attached.append_with_indent(indent, buf);
}

fn has_comments(comments: &Comments) -> bool {
    !comments.leading.is_empty() || !comments.trailing.is_empty()
}
