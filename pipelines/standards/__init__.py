"""3GPP specifications: safe reading of .zip/.doc/.docx, Word XML preparation, conversion to LaTeX."""
