/* an empty script: the implicit keep */
