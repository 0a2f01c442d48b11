# Doxygen input filter for include/shmbus/: the headers document their API in plain `//` comments
# (the project's one comment style), which Doxygen ignores. This turns them into Doxygen comments
# on the way in, without touching the files:
#   - the comment that opens a file becomes that file's description (@file, on a line of its own:
#     Doxygen's line numbers in such a file are one more than the file's own);
#   - a comment on lines of its own documents the declaration that follows it, and its lines
#     indented by three or more spaces (code examples, tables) stay preformatted;
#   - a comment after code on the same line (two spaces, then //) documents that member (///<).
1s#^// #/// @file\n/// #
s#^([[:space:]]*)//   #\1///     #
s#^([[:space:]]*)//( |$)#\1///\2#
s#([^[:space:]/][^/]*[^[:space:]])([[:space:]]{2,})// #\1\2///< #
