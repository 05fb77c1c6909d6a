# Compiler flags every target of the project gets: warnings on, and the
# sanitizer build when MT_SANITIZE is set.
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
                    -Werror=implicit-function-declaration -Werror=incompatible-pointer-types)
if(MT_WERROR)
  add_compile_options(-Werror)
endif()
if(MT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
